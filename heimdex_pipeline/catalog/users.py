"""Users and their tokens in the catalog: added, listed, given a new token, revoked, and found by
the token a request carries.

A token is 32 random bytes (`secrets.token_urlsafe`), shown once and stored only as its SHA-256.
A slow password hash (bcrypt, scrypt) is for secrets a person chose and an attacker can guess;
256 random bits cannot be guessed, so one fast hash gives nothing away and keeps a request's
lookup to one indexed query."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from heimdex_pipeline.catalog.models import User, Video, VideoState, utcnow
from heimdex_pipeline.settings import USER_NAME

TOKEN_BYTES = 32


class UserError(ValueError):
    """A user command that cannot be done as asked (say what to change)."""


class UnknownUserError(UserError, LookupError):
    def __init__(self, name: str):
        super().__init__(f"no user {name!r}: `heimdex users list` shows them")
        self.name = name


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def check_name(name: str) -> str:
    """A user's name as given, if it is one (it names a folder under incoming/)."""
    if not re.fullmatch(USER_NAME, name or ""):
        raise UserError(
            f"{name!r} is not a user name: 1 to 64 of a-z, 0-9, '-' and '_', starting with a "
            "letter or digit"
        )
    return name


@dataclass(frozen=True)
class Caller:
    """Who a request (or a command) acts for: a user, or an admin (who sees every library).
    `owner` is whose library it writes into; `scope` is whose it reads (None: everyone's)."""

    name: str
    admin: bool = False

    @property
    def scope(self) -> str | None:
        return None if self.admin else self.name

    def may_see(self, owner: str) -> bool:
        return self.admin or owner == self.name


def add_user(session: Session, name: str, admin: bool = False) -> str:
    """A new user; their token (shown once: only its hash is kept)."""
    check_name(name)
    if session.scalar(select(User).where(User.name == name)) is not None:
        raise UserError(f"there is a user {name!r} already (`heimdex users token {name}`)")
    token = new_token()
    session.add(
        User(name=name, is_admin=admin, token_sha256=token_hash(token), token_created_at=utcnow())
    )
    session.flush()
    return token


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise UnknownUserError(name)
    return user


def renew_token(session: Session, name: str) -> str:
    """A new token for the user (revoked or not); the old one stops working at once."""
    user = get_user(session, name)
    token = new_token()
    user.token_sha256, user.token_created_at, user.revoked_at = token_hash(token), utcnow(), None
    session.flush()
    return token


def revoke(session: Session, name: str) -> None:
    """The user's token stops working; their videos stay theirs (a new token brings them back)."""
    user = get_user(session, name)
    user.token_sha256, user.revoked_at = None, utcnow()
    session.flush()


def caller_for_token(session: Session, token: str) -> Caller | None:
    """The user a token belongs to (None: no live user has it)."""
    if not token:
        return None
    user = session.scalar(select(User).where(User.token_sha256 == token_hash(token)))
    if user is None or user.revoked_at is not None:
        return None
    return Caller(user.name, user.is_admin)


def has_users(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def is_user(session: Session, name: str) -> bool:
    return session.scalar(select(User.id).where(User.name == name)) is not None


def user_names(session: Session) -> set[str]:
    return set(session.scalars(select(User.name)))


@dataclass(frozen=True)
class UserRow:
    name: str
    admin: bool
    state: str  # "active" | "revoked"
    created_at: str
    videos: int


def list_users(session: Session) -> list[UserRow]:
    """Every user with their live videos' count, by name."""
    counts = dict(
        session.execute(
            select(Video.owner, func.count())
            .where(Video.state != VideoState.DELETED)
            .group_by(Video.owner)
        ).all()
    )
    return [
        UserRow(
            user.name,
            user.is_admin,
            "revoked" if user.revoked_at is not None else "active",
            user.created_at.isoformat(timespec="seconds"),
            int(counts.get(user.name, 0)),
        )
        for user in session.scalars(select(User).order_by(User.name))
    ]


def check_owner(session: Session, owner: str, default_owner: str) -> str:
    """`owner` if videos can be put in their library: the default owner, or a user."""
    check_name(owner)
    if owner != default_owner and not is_user(session, owner):
        raise UnknownUserError(owner)
    return owner
