"""Environment → settings, in one place. Every default works on one machine with no server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from heimdex_pipeline.media.detector_names import DEFAULT_DETECTOR, DETECTORS

# Values that must never be echoed: in errors, logs, metadata or command output.
SECRET_VARIABLES = frozenset(
    {"HEIMDEX_S3_SECRET_KEY", "HEIMDEX_S3_ACCESS_KEY", "HEIMDEX_API_TOKEN"}
)


class SettingsError(ValueError):
    """A configuration variable holds a value Heimdex cannot use (the message never repeats a
    secret: keys are not shown, database URLs lose their password)."""

    def __init__(self, variable: str, value: str, reason: str):
        super().__init__(f"{variable}={shown_value(variable, value)!r}: {reason}")
        self.variable = variable


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def shown_value(variable: str, value: str) -> str:
    """What may be printed of a variable's value."""
    if variable in SECRET_VARIABLES:
        return "***"
    if variable == "HEIMDEX_DATABASE_URL":
        return redact_url(value)
    return value


@dataclass(frozen=True)
class S3Settings:
    """Where an S3-compatible server (MinIO in production) is and how to reach it: the one shape
    of S3 configuration, taken by every client."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = True
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def __repr__(self) -> str:  # never print the keys
        return (
            f"S3Settings(endpoint={self.endpoint!r}, secure={self.secure}, region={self.region!r})"
        )


@dataclass(frozen=True)
class ServeSettings:
    """`heimdex serve`: where it listens, who may use it, what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_token: str | None = None
    # How browsers reach the S3 server (presigned URLs are signed for it), when not as workers do.
    public_endpoint: str | None = None
    public_secure: bool | None = None
    max_upload_bytes: int = 2 * 1024**3
    max_image_bytes: int = 20 * 1024**2

    def __repr__(self) -> str:
        token = "set" if self.api_token else "unset"
        return f"ServeSettings(host={self.host!r}, port={self.port}, api_token={token})"


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
    shot_detector: str
    vector_index_min_rows: int
    run_batch_size: int
    step_retries: int
    step_retry_delay_s: float
    outage_reruns: int
    outage_wait_s: float
    serve: ServeSettings
    # HEIMDEX_* variables set in this process's environment: resources read them via dg.EnvVar.
    from_environment: frozenset[str] = frozenset()

    @property
    def object_store_is_s3(self) -> bool:
        return self.object_store.startswith("s3://")

    @property
    def lancedb_is_s3(self) -> bool:
        return self.lancedb_uri.startswith("s3://")

    @property
    def database_url_redacted(self) -> str:
        return redact_url(self.database_url)

    def __repr__(self) -> str:
        return f"Settings(home={self.home}, database_url={self.database_url_redacted!r}, ...)"


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


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise SettingsError(name, raw, f"expected one of {', '.join(allowed)}")
    return raw


def _number(
    env: Mapping[str, str], name: str, default: float, kind: type, allow_zero: bool = False
) -> float:
    """A positive number (or zero, where allowed) of the given kind."""
    raw = env.get(name)
    if raw is None or raw == "":
        return kind(default)
    wanted = f"a {'non-negative' if allow_zero else 'positive'} {kind.__name__}"
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(name, raw, f"expected {wanted}") from None
    if value < 0 or (value == 0 and not allow_zero) or value != value:
        raise SettingsError(name, raw, f"expected {wanted}")
    return value


def _s3_url(name: str, value: str) -> str:
    parsed = urlparse(value)
    bucket = parsed.netloc
    if not bucket:
        raise SettingsError(name, value, "an s3:// URL needs a bucket: s3://bucket/prefix")
    if len(bucket) < 3 or len(bucket) > 63 or not all(c.isalnum() or c in "-." for c in bucket):
        raise SettingsError(name, value, "bucket names are 3-63 letters, digits, '-' or '.'")
    return value.rstrip("/")


def normalise_location(name: str, raw: str) -> str:
    """A store location as the clients take it: an absolute folder or s3://bucket/prefix."""
    if "://" in raw:
        if raw.startswith("s3://"):
            return _s3_url(name, raw)
        raise SettingsError(name, raw, "expected a local folder or an s3://bucket/prefix URL")
    return str(Path(raw).expanduser().resolve())


def check_database_url(database_url: str) -> str:
    try:
        parsed = make_url(database_url)
    except ArgumentError:
        raise SettingsError(
            "HEIMDEX_DATABASE_URL",
            database_url,
            "not a database URL (sqlite:///… or postgresql://…)",
        ) from None
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise SettingsError("HEIMDEX_DATABASE_URL", database_url, "only sqlite and postgresql")
    return database_url


def check_s3_endpoint(endpoint: str) -> str:
    if not endpoint:
        raise SettingsError("HEIMDEX_S3_ENDPOINT", endpoint, "required with an s3:// location")
    if "://" in endpoint or "/" in endpoint:
        raise SettingsError("HEIMDEX_S3_ENDPOINT", endpoint, "expected host:port, no scheme")
    return endpoint


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings; a bad value raises SettingsError naming its variable."""
    env = os.environ if env is None else env
    home = Path(env.get("HEIMDEX_HOME") or Path.cwd() / ".heimdex").expanduser().resolve()

    database_url = check_database_url(
        env.get("HEIMDEX_DATABASE_URL") or f"sqlite:///{home / 'catalog.sqlite'}"
    )
    object_store = normalise_location(
        "HEIMDEX_OBJECT_STORE", env.get("HEIMDEX_OBJECT_STORE") or str(home / "objects")
    )
    lancedb_uri = normalise_location(
        "HEIMDEX_LANCEDB_URI", env.get("HEIMDEX_LANCEDB_URI") or str(home / "lancedb")
    )

    s3 = None
    if object_store.startswith("s3://") or lancedb_uri.startswith("s3://"):
        s3 = S3Settings(
            endpoint=check_s3_endpoint(env.get("HEIMDEX_S3_ENDPOINT") or ""),
            access_key=env.get("HEIMDEX_S3_ACCESS_KEY", ""),
            secret_key=env.get("HEIMDEX_S3_SECRET_KEY", ""),
            secure=_bool(env, "HEIMDEX_S3_SECURE", True),
            region=env.get("HEIMDEX_S3_REGION") or "us-east-1",
        )

    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster").expanduser().resolve()
    public = env.get("HEIMDEX_S3_PUBLIC_ENDPOINT") or None
    public_secure = None
    if public is not None and "://" in public:
        scheme, _, public = public.partition("://")
        if scheme not in ("http", "https") or not public or "/" in public.rstrip("/"):
            raise SettingsError(
                "HEIMDEX_S3_PUBLIC_ENDPOINT", env["HEIMDEX_S3_PUBLIC_ENDPOINT"],
                "expected host:port or http(s)://host:port",
            )  # fmt: skip
        public, public_secure = public.rstrip("/"), scheme == "https"
    serve = ServeSettings(
        host=env.get("HEIMDEX_SERVE_HOST") or "127.0.0.1",
        port=int(_number(env, "HEIMDEX_SERVE_PORT", 8080, int)),
        api_token=env.get("HEIMDEX_API_TOKEN") or None,
        public_endpoint=public,
        public_secure=public_secure,
        max_upload_bytes=int(_number(env, "HEIMDEX_MAX_UPLOAD_MB", 2048, float) * 1024**2),
        max_image_bytes=int(_number(env, "HEIMDEX_MAX_IMAGE_MB", 20, float) * 1024**2),
    )
    return Settings(
        home=home,
        database_url=database_url,
        object_store=object_store,
        lancedb_uri=lancedb_uri,
        s3=s3,
        clip_model=env.get("HEIMDEX_CLIP_MODEL") or DEFAULT_CLIP_MODEL,
        clip_pretrained=env.get("HEIMDEX_CLIP_PRETRAINED") or DEFAULT_CLIP_PRETRAINED,
        dagster_home=dagster_home,
        max_scene_s=_number(env, "HEIMDEX_MAX_SCENE_S", 30.0, float),
        shot_detector=_choice(env, "HEIMDEX_SHOT_DETECTOR", DETECTORS, DEFAULT_DETECTOR),
        vector_index_min_rows=int(_number(env, "HEIMDEX_VECTOR_INDEX_MIN_ROWS", 10_000, int)),
        run_batch_size=int(_number(env, "HEIMDEX_RUN_BATCH_SIZE", 25, int)),
        step_retries=int(_number(env, "HEIMDEX_STEP_RETRIES", 3, int, allow_zero=True)),
        step_retry_delay_s=_number(env, "HEIMDEX_STEP_RETRY_DELAY_S", 5.0, float, allow_zero=True),
        outage_reruns=int(_number(env, "HEIMDEX_OUTAGE_RERUNS", 2, int, allow_zero=True)),
        outage_wait_s=_number(env, "HEIMDEX_OUTAGE_WAIT_S", 300.0, float, allow_zero=True),
        serve=serve,
        from_environment=frozenset(
            k for k, v in env.items() if k.startswith("HEIMDEX_") and v and os.environ.get(k) == v
        ),
    )
