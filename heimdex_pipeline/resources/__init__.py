"""Dagster resources: the catalog, the object store, the vector store, CLIP and pipeline knobs.

`build_resources` is the one place that decides local or production, from the settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from urllib.parse import urlparse

import dagster as dg
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from heimdex_pipeline.catalog.database import migrated_engine, session_scope
from heimdex_pipeline.resources.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from heimdex_pipeline.settings import Settings


class CatalogResource(dg.ConfigurableResource):
    """The `Video` and `Scene` tables, migrated to head before first use."""

    database_url: str

    def engine(self) -> Engine:
        return migrated_engine(self.database_url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine()) as session:
            yield session


class S3Config(dg.Config):
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool = True
    region: str = "us-east-1"


@cache
def _object_store(location: str, s3: tuple | None) -> ObjectStore:
    if location.startswith("s3://"):
        if s3 is None:
            raise ValueError(f"{location}: an s3:// object store needs HEIMDEX_S3_ENDPOINT")
        endpoint, access_key, secret_key, secure, region = s3
        parsed = urlparse(location)
        return S3ObjectStore(
            endpoint, access_key, secret_key, parsed.netloc, parsed.path, secure, region
        )
    return LocalObjectStore(location)


def _s3_tuple(s3: S3Config | None) -> tuple | None:
    if s3 is None:
        return None
    return (s3.endpoint, s3.access_key, s3.secret_key, s3.secure, s3.region)


class ObjectStoreResource(dg.ConfigurableResource):
    """A local folder, or s3://bucket/prefix on an S3-compatible server."""

    location: str
    s3: S3Config | None = None

    def store(self) -> ObjectStore:
        return _object_store(self.location, _s3_tuple(self.s3))


@cache
def _vector_store(uri: str, s3: tuple | None):
    from heimdex_pipeline.resources.vector_store import VectorStore

    options = None
    if uri.startswith("s3://") and s3 is not None:
        endpoint, access_key, secret_key, secure, region = s3
        options = {
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "aws_endpoint": f"{'https' if secure else 'http'}://{endpoint}",
            "aws_region": region,
            "allow_http": "false" if secure else "true",
        }
    return VectorStore(uri, options)


class VectorStoreResource(dg.ConfigurableResource):
    """LanceDB in a local folder or on the object store."""

    uri: str
    s3: S3Config | None = None

    def store(self):
        return _vector_store(self.uri, _s3_tuple(self.s3))


class ClipResource(dg.ConfigurableResource):
    """open_clip model and weights; loaded once per process, on first use."""

    model: str
    pretrained: str

    def encoder(self):
        from heimdex_pipeline.resources.clip import shared_clip

        return shared_clip(self.model, self.pretrained)


class PipelineResource(dg.ConfigurableResource):
    """Knobs of the media steps and the index."""

    max_scene_s: float = 30.0
    thumbnail_long_side: int = 480
    embed_short_side: int = 224
    vector_index_min_rows: int = 10_000


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource, configured from the settings: the one place local meets production."""
    s3 = None
    if settings.s3 is not None:
        s3 = S3Config(
            endpoint=settings.s3.endpoint,
            access_key=settings.s3.access_key,
            secret_key=settings.s3.secret_key,
            secure=settings.s3.secure,
            region=settings.s3.region,
        )
    return {
        "catalog": CatalogResource(database_url=settings.database_url),
        "objects": ObjectStoreResource(location=settings.object_store, s3=s3),
        "vectors": VectorStoreResource(uri=settings.lancedb_uri, s3=s3),
        "clip": ClipResource(model=settings.clip_model, pretrained=settings.clip_pretrained),
        "pipeline": PipelineResource(
            max_scene_s=settings.max_scene_s,
            vector_index_min_rows=settings.vector_index_min_rows,
        ),
    }
