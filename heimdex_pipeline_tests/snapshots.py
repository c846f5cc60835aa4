"""Everything a video leaves behind, as comparable data: rows, objects, vectors."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from heimdex_pipeline.catalog.models import Scene, Video
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import RUNS_PREFIX


def snapshot(stores: Stores) -> dict:
    """Rows, objects (by content digest) and vector rows: equal snapshots, equal state."""
    with stores.catalog.session() as session:
        videos = [
            (v.id, v.state.value, v.sha256, v.duration_s, v.frame_count, v.error_text)
            for v in session.scalars(select(Video).order_by(Video.id))
        ]
        scenes = [
            (s.id, s.video_id, s.index, s.start_s, s.end_s, s.thumbnail_key, s.sidecar_key)
            for s in session.scalars(select(Scene).order_by(Scene.id))
        ]
    store = stores.objects
    stored = {
        info.key: hashlib.sha256(store.get_bytes(info.key)).hexdigest()
        for info in store.list("")
        if not info.key.startswith(("frames/", RUNS_PREFIX))  # bundles: by key only, below
    }
    frames = sorted(info.key for info in store.list("frames/"))
    tables = {}
    for name in stores.vectors.scenes_tables():
        rows = stores.vectors.db.open_table(name).to_arrow().to_pylist()
        tables[name] = sorted(
            (r["scene_id"], r["video_id"], r["start_s"], r["end_s"], tuple(r["vector"]))
            for r in rows
        )
    return {
        "videos": videos,
        "scenes": scenes,
        "objects": stored,
        "frames": frames,
        "tables": tables,
    }
