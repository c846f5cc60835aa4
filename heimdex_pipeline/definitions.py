"""What Dagster loads (workspace.yaml, dagster_cloud.yaml and pyproject point here): the code
location built from the environment's settings. Everything it holds is under `pipeline/`."""

from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.settings import load_settings

defs = build_definitions(load_settings())
