"""One dynamic partition per video: every asset imports this constant."""

import dagster as dg

videos = dg.DynamicPartitionsDefinition(name="videos")
