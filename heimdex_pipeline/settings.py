"""Environment → settings, in one place. Every default works on one machine with no server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class SettingsError(ValueError):
    """A configuration variable holds a value Heimdex cannot use."""

    def __init__(self, variable: str, value: str, reason: str):
        super().__init__(f"{variable}={value!r}: {reason}")
        self.variable = variable


@dataclass(frozen=True)
class S3Settings:
    """Where an S3-compatible store (MinIO in production) lives and how to reach it."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str


@dataclass(frozen=True)
class Settings:
    """Everything Heimdex reads from the environment."""

    home: Path
    database_url: str
    object_store: str  # a local folder path, or s3://bucket/prefix
    lancedb_uri: str  # a local folder path, or s3://bucket/prefix
    s3: S3Settings | None
    clip_model: str
    clip_pretrained: str
    dagster_home: Path
    max_scene_s: float
    vector_index_min_rows: int

    @property
    def object_store_is_s3(self) -> bool:
        return self.object_store.startswith("s3://")

    @property
    def lancedb_is_s3(self) -> bool:
        return self.lancedb_uri.startswith("s3://")


DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(name, raw, "expected true or false")


def _positive(env: Mapping[str, str], name: str, default: float, kind: type) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(name, raw, f"expected a positive {kind.__name__}") from None
    if value <= 0:
        raise SettingsError(name, raw, f"expected a positive {kind.__name__}")
    return value


def _s3_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    bucket = parsed.netloc
    if not bucket:
        raise SettingsError(name, value, "an s3:// URL needs a bucket: s3://bucket/prefix")
    if len(bucket) < 3 or len(bucket) > 63 or not all(c.isalnum() or c in "-." for c in bucket):
        raise SettingsError(name, value, "bucket names are 3-63 letters, digits, '-' or '.'")
    return value.rstrip("/")


def _location(env: Mapping[str, str], name: str, default: Path) -> str:
    raw = env.get(name) or ""
    if not raw:
        return str(default)
    if "://" in raw:
        if raw.startswith("s3://"):
            return _s3_url(name, raw)
        raise SettingsError(name, raw, "expected a local folder or an s3://bucket/prefix URL")
    return str(Path(raw).expanduser().resolve())


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; a bad value raises SettingsError naming its variable."""
    env = os.environ if env is None else env
    home = Path(env.get("HEIMDEX_HOME") or Path.cwd() / ".heimdex").expanduser().resolve()

    database_url = env.get("HEIMDEX_DATABASE_URL") or f"sqlite:///{home / 'catalog.sqlite'}"
    try:
        parsed_db = make_url(database_url)
    except ArgumentError:
        raise SettingsError(
            "HEIMDEX_DATABASE_URL",
            database_url,
            "not a database URL (sqlite:///… or postgresql://…)",
        ) from None
    if parsed_db.get_backend_name() not in {"sqlite", "postgresql"}:
        raise SettingsError("HEIMDEX_DATABASE_URL", database_url, "only sqlite and postgresql")

    object_store = _location(env, "HEIMDEX_OBJECT_STORE", home / "objects")
    lancedb_uri = _location(env, "HEIMDEX_LANCEDB_URI", home / "lancedb")

    s3 = None
    if object_store.startswith("s3://") or lancedb_uri.startswith("s3://"):
        endpoint = env.get("HEIMDEX_S3_ENDPOINT") or ""
        if not endpoint:
            raise SettingsError("HEIMDEX_S3_ENDPOINT", endpoint, "required with an s3:// location")
        if "://" in endpoint or "/" in endpoint:
            raise SettingsError("HEIMDEX_S3_ENDPOINT", endpoint, "expected host:port, no scheme")
        s3 = S3Settings(
            endpoint=endpoint,
            access_key=env.get("HEIMDEX_S3_ACCESS_KEY", ""),
            secret_key=env.get("HEIMDEX_S3_SECRET_KEY", ""),
            secure=_bool(env, "HEIMDEX_S3_SECURE", True),
            region=env.get("HEIMDEX_S3_REGION") or "us-east-1",
        )

    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
    return Settings(
        home=home,
        database_url=database_url,
        object_store=object_store,
        lancedb_uri=lancedb_uri,
        s3=s3,
        clip_model=env.get("HEIMDEX_CLIP_MODEL") or DEFAULT_CLIP_MODEL,
        clip_pretrained=env.get("HEIMDEX_CLIP_PRETRAINED") or DEFAULT_CLIP_PRETRAINED,
        dagster_home=dagster_home,
        max_scene_s=_positive(env, "HEIMDEX_MAX_SCENE_S", 30.0, float),
        vector_index_min_rows=int(_positive(env, "HEIMDEX_VECTOR_INDEX_MIN_ROWS", 10_000, int)),
    )
