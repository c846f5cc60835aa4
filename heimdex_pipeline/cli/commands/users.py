"""`heimdex users`: add, list, revoke users and give them new tokens. A token is printed once
(only its SHA-256 is kept): hand it to the user, who signs in with it or sends it as a bearer
token."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.users import add_user, list_users, renew_token, revoke
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.stores import open_stores

    catalog = open_stores(settings).catalog
    action = args.users_command or "list"
    with catalog.session() as session:
        if action == "add":
            token = add_user(session, args.name, admin=args.admin)
            role = "an admin" if args.admin else "a user"
            print(f"added {args.name} ({role}); their token, shown this once:", file=sys.stderr)
            print(token)
        elif action == "token":
            token = renew_token(session, args.name)
            print(f"a new token for {args.name} (the old one no longer works):", file=sys.stderr)
            print(token)
        elif action == "revoke":
            revoke(session, args.name)
            print(f"{args.name}'s token no longer works; their videos stay theirs")
        else:
            rows = list_users(session)
            if args.json:
                console.print_json([row.__dict__ for row in rows])
            else:
                print(f"{len(rows)} users (default owner: {settings.default_owner})")
                for row in rows:
                    role = "admin" if row.admin else "user"
                    print(f"{row.name:<24} {role:<6} {row.state:<8} {row.videos:>6} videos  "
                          f"since {row.created_at}")  # fmt: skip
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    users = commands.add_parser("users", help="users, their libraries and tokens")
    users.add_argument("--json", action="store_true")
    users.set_defaults(run=run_users, users_command=None)
    actions = users.add_subparsers(dest="users_command")
    add = actions.add_parser("add", help="a new user; prints their token once")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="sees and manages every library")
    actions.add_parser("list", help="every user, with their videos' count")
    token = actions.add_parser("token", help="a new token for a user (the old one dies)")
    token.add_argument("name")
    revoke = actions.add_parser("revoke", help="a user's token stops working")
    revoke.add_argument("name")
