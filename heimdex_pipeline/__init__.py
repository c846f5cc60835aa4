"""Heimdex: a Dagster pipeline that turns videos into a searchable index of scenes."""

PIPELINE_VERSION = "0.1.0"
