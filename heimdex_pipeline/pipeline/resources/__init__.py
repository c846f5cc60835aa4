"""Dagster resources, one per file; `build_resources` is the one place local meets production.

Every value that came from the environment reaches a resource as `dg.EnvVar(NAME)`, resolved in
the process that runs the step: secrets never enter the definitions, the UI or a run's snapshot.
Unset variables fall back to literal local defaults (paths under HEIMDEX_HOME; no secrets).
"""

from __future__ import annotations

import dagster as dg

from heimdex_pipeline.pipeline.resources.asr import AsrResource
from heimdex_pipeline.pipeline.resources.catalog import CatalogResource
from heimdex_pipeline.pipeline.resources.clip import ClipResource
from heimdex_pipeline.pipeline.resources.faces import FacesResource
from heimdex_pipeline.pipeline.resources.objects import ObjectStoreResource
from heimdex_pipeline.pipeline.resources.pipeline import PipelineResource
from heimdex_pipeline.pipeline.resources.s3 import S3Resource
from heimdex_pipeline.pipeline.resources.vectors import VectorStoreResource
from heimdex_pipeline.settings import Settings
from heimdex_pipeline.stores import Stores

__all__ = [
    "AsrResource",
    "CatalogResource",
    "ClipResource",
    "FacesResource",
    "ObjectStoreResource",
    "PipelineResource",
    "S3Resource",
    "VectorStoreResource",
    "build_resources",
    "stores_from",
]


def stores_from(
    catalog: CatalogResource, objects: ObjectStoreResource, vectors: VectorStoreResource
) -> Stores:
    """The plain stores behind a step's or a sensor's store resources."""
    return Stores(catalog=catalog.catalog(), objects=objects.store(), vectors=vectors.store())


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """Every resource, configured from the settings."""

    def env_or(name: str, default: object):
        return dg.EnvVar(name) if name in settings.from_environment else default

    s3 = S3Resource()
    if settings.s3 is not None:
        s3 = S3Resource(
            endpoint=env_or("HEIMDEX_S3_ENDPOINT", settings.s3.endpoint),
            access_key=env_or("HEIMDEX_S3_ACCESS_KEY", settings.s3.access_key),
            secret_key=env_or("HEIMDEX_S3_SECRET_KEY", settings.s3.secret_key.get_secret_value()),
            secure=settings.s3.secure,
            region=settings.s3.region,
        )
    return {
        "catalog": CatalogResource(
            database_url=env_or("HEIMDEX_DATABASE_URL", settings.database_url)
        ),
        "objects": ObjectStoreResource(
            location=env_or("HEIMDEX_OBJECT_STORE", settings.object_store), s3=s3
        ),
        "vectors": VectorStoreResource(
            uri=env_or("HEIMDEX_LANCEDB_URI", settings.lancedb_uri),
            s3=s3,
            default_owner=env_or("HEIMDEX_DEFAULT_OWNER", settings.default_owner),
        ),
        "clip": ClipResource(model=settings.clip_model, pretrained=settings.clip_pretrained),
        "asr": AsrResource(model=settings.asr_model, language=settings.asr_language or ""),
        "faces": FacesResource(
            enabled=settings.faces,
            min_size_px=settings.faces_min_px,
            upsample=settings.faces_upsample,
            frames_per_scene=settings.faces_frames_per_scene,
        ),
        "pipeline": PipelineResource(
            max_scene_s=settings.max_scene_s,
            shot_detector=settings.shot_detector,
            vector_index_min_rows=settings.vector_index_min_rows,
            outage_wait_s=settings.outage_wait_s,
        ),
    }
