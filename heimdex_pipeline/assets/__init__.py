"""The five assets, one partition per video: raw_videos → scenes → thumbnails → embeddings →
search_index."""

from heimdex_pipeline.assets.embeddings import embeddings
from heimdex_pipeline.assets.raw_videos import raw_videos
from heimdex_pipeline.assets.scenes import scenes
from heimdex_pipeline.assets.search_index import search_index
from heimdex_pipeline.assets.thumbnails import thumbnails

ALL_ASSETS = [raw_videos, scenes, thumbnails, embeddings, search_index]

__all__ = ["ALL_ASSETS", "embeddings", "raw_videos", "scenes", "search_index", "thumbnails"]
