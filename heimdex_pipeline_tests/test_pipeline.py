"""The whole chain on real clips: what it leaves, what it refuses, and that it is idempotent."""

import io
import json
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterEventType
from PIL import Image
from sqlalchemy import select, update

from heimdex_pipeline.catalog.models import Scene, Video
from heimdex_pipeline.catalog.video_ids import source_uri_for, video_id_for
from heimdex_pipeline.pipeline.checks import ALL_CHECKS
from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.instance import dagster_instance
from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG, index_paths
from heimdex_pipeline.pipeline.tags import INDEX_JOB
from heimdex_pipeline_tests.conftest import stores_of, suite_env
from heimdex_pipeline_tests.media_files import copy_with_name, make_bad_inputs
from heimdex_pipeline_tests.snapshots import snapshot

pytestmark = pytest.mark.slow

GOOD = [
    "bikes.mp4",
    "issue-134-rotate.mp4",
    "issue-195-aspect-ratio.mp4",
    "delayed_start.mp4",
    "handwave-vfr.webm",
]


@pytest.fixture(scope="module")
def indexed(sample_videos: Path, tmp_path_factory, tiny_clip):
    """One `index` call over good clips and every kind of bad input, mixed together."""
    from heimdex_pipeline.settings import load_settings

    home = tmp_path_factory.mktemp("home")
    # speech on: every stage's checks, the transcripts' too
    settings = load_settings(suite_env(home, tiny_clip, HEIMDEX_ASR_MODEL="tiny.en"))
    bad = make_bad_inputs(home / "bad", sample_videos / "big_buck_bunny_0_30.webm")
    inputs = [sample_videos / GOOD[0], *bad.values(), *(sample_videos / n for n in GOOD[1:])]
    outcomes = index_paths(inputs, settings)
    return settings, {Path(o.source).name: o for o in outcomes}, bad


def test_good_clips_are_indexed_and_bad_ones_fail_with_a_reason(indexed):
    _, outcomes, bad = indexed
    for name in GOOD:
        assert outcomes[name].state == "indexed", (name, outcomes[name].error)
        assert outcomes[name].error is None and outcomes[name].scenes
    for path in bad.values():
        outcome = outcomes[path.name]
        assert outcome.state == "failed"
        assert path.name in outcome.error, outcome.error
        assert outcome.scenes == []


def test_bad_inputs_leave_no_rows_objects_sidecars_or_vectors(indexed):
    settings, outcomes, bad = indexed
    state = snapshot(stores_of(settings))
    bad_ids = {outcomes[p.name].video_id for p in bad.values()}
    assert not [s for s in state["scenes"] if s[1] in bad_ids]
    leftovers = [k for k in [*state["objects"], *state["frames"]] if any(b in k for b in bad_ids)]
    assert leftovers == []
    assert not [r for rows in state["tables"].values() for r in rows if r[1] in bad_ids]


def test_cuts_become_scenes_that_tile_the_video(indexed, cuts):
    _, outcomes, _ = indexed
    bikes = outcomes["bikes.mp4"]
    starts = [s["start_s"] for s in bikes.scenes]
    assert starts[1:] == pytest.approx(cuts["bikes.mp4"]["cuts_s"], abs=0.08)
    assert bikes.scenes[0]["start_s"] == 0 and bikes.scenes[-1]["end_s"] == bikes.duration_s
    for before, after in zip(bikes.scenes, bikes.scenes[1:], strict=False):
        assert before["end_s"] == after["start_s"]


def thumbnail_sizes(settings, outcome) -> set[tuple[int, int]]:
    store = stores_of(settings).objects
    sizes = set()
    for scene in outcome.scenes:
        with Image.open(io.BytesIO(store.get_bytes(scene["thumbnail_key"]))) as image:
            assert image.format == "WEBP"
            sizes.add(image.size)
    return sizes


def upright_display_size(path: Path) -> tuple[float, float]:
    """A video's picture as a player shows it, read from the file with PyAV: the coded size
    stretched by its sample aspect ratio, turned by its display matrix."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        ratio = stream.sample_aspect_ratio
        turned = next(container.decode(stream)).rotation % 180 == 90
    width *= float(ratio) if ratio else 1.0
    return (height, width) if turned else (width, height)


def test_thumbnails_are_upright_and_in_display_aspect(indexed):
    settings, outcomes, _ = indexed
    long_side = build_definitions(settings).resources["pipeline"].thumbnail_long_side
    for name in ("issue-134-rotate.mp4", "issue-195-aspect-ratio.mp4", "bikes.mp4"):
        width, height = upright_display_size(Path(outcomes[name].source))
        scale = long_side / max(width, height)
        (size,) = thumbnail_sizes(settings, outcomes[name])
        assert size == pytest.approx((width * scale, height * scale), abs=1), name
    (rotated,) = thumbnail_sizes(settings, outcomes["issue-134-rotate.mp4"])
    assert rotated[1] > rotated[0], "the rotated clip's picture stands upright"


def test_a_thumbnail_is_not_a_black_or_blurred_frame_when_a_better_one_is_near():
    from heimdex_pipeline.media.detect import SceneSpan
    from heimdex_pipeline.media.frames import FrameSample
    from heimdex_pipeline.media.thumbnail import pick_representative

    def sample(time_s, luma, contrast, sharpness):
        return FrameSample(time_s, b"", luma, contrast, sharpness)

    black_middle = sample(5.0, 3.0, 1.0, 0.0)
    blurred = sample(4.0, 120.0, 40.0, 5.0)
    sharp = sample(6.0, 110.0, 45.0, 300.0)
    far_sharper = sample(0.5, 110.0, 45.0, 9000.0)  # outside the middle half: not chosen
    span = SceneSpan(0, 0.0, 10.0)
    chosen = pick_representative([far_sharper, blurred, black_middle, sharp], span)
    assert chosen is sharp
    only_dark = [sample(5.0, 3.0, 1.0, 0.0), sample(9.5, 2.0, 1.0, 0.0)]
    assert pick_representative(only_dark, span).time_s == 5.0


def test_keeping_only_the_needed_frames_changes_no_pick():
    import random

    from heimdex_pipeline.media.detect import tile_scenes
    from heimdex_pipeline.media.frames import FrameSample
    from heimdex_pipeline.media.thumbnail import (
        needed_samples,
        pick_embedding_frames,
        pick_representative,
    )

    rng = random.Random(7)
    for _ in range(200):
        duration = rng.uniform(1, 120)
        spans = tile_scenes(
            [rng.uniform(0, duration) for _ in range(rng.randint(0, 6))], duration, 30
        )
        times = sorted(rng.uniform(0, duration) for _ in range(rng.randint(1, 40)))
        samples = [
            FrameSample(t, b"", rng.choice([3.0, 120.0]), rng.uniform(0, 60), rng.uniform(0, 900))
            for t in times
        ]
        kept = needed_samples(samples, spans)
        assert len(kept) <= len(samples)
        for span in spans:
            assert pick_representative(kept, span) is pick_representative(samples, span)
            chosen, reference = (pick_embedding_frames(x, span) for x in (kept, samples))
            assert [id(a) for a in chosen] == [id(b) for b in reference]


def test_all_steps_together_decode_at_most_twice_the_frames(indexed):
    _, outcomes, _ = indexed
    for name in GOOD:
        outcome = outcomes[name]
        assert outcome.frame_count <= outcome.frames_decoded <= 2 * outcome.frame_count, name


class _CountingContainer:
    """A real PyAV container that counts the frames its decoder hands out."""

    def __init__(self, container, counts: dict[str, int], name: str):
        self._container, self._counts, self._name = container, counts, name

    def __getattr__(self, attribute):
        return getattr(self._container, attribute)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._container.close()

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            self._counts[self._name] = self._counts.get(self._name, 0) + 1
            yield frame


def test_the_decode_budget_counted_at_the_decoder(sample_videos, make_settings, monkeypatch):
    """Every frame any step decodes, counted by wrapping PyAV's decoder: at most twice the
    video's frames in all, and exactly what the steps report."""
    import av

    counts: dict[str, int] = {}
    real_open = av.open

    def counting_open(path, *args, **kwargs):
        name = Path(str(path)).parent.name  # the inbox copy sits under the video's id
        return _CountingContainer(real_open(path, *args, **kwargs), counts, name)

    monkeypatch.setattr(av, "open", counting_open)
    settings = make_settings()
    outcomes = index_paths([sample_videos / name for name in GOOD[:3]], settings)
    for outcome in outcomes:
        assert outcome.state == "indexed", outcome.error
        counted = counts[outcome.video_id]
        assert outcome.frame_count <= counted <= 2 * outcome.frame_count, outcome.source
        assert counted == outcome.frames_decoded, outcome.source


README_METADATA = {  # "Each materialization carries the numbers a person checks" (README)
    "raw_videos": {"duration_s", "frame_count", "fps", "codec", "frames_decoded", "seconds"},
    "scenes": {"scene_count", "cut_count", "cuts_s", "frames_decoded", "detector", "seconds"},
    "thumbnails": {"thumbnail_count", "contact_sheet", "seconds"},
    "embeddings": {"vector_count", "model", "pretrained", "model_id", "random_weights", "seconds"},
    "search_index": {"table", "rows_for_video", "random_weights", "seconds"},
}


def test_each_materialization_carries_the_metadata_the_readme_lists(indexed):
    settings, outcomes, _ = indexed
    instance = dagster_instance(settings)
    outcome = outcomes[GOOD[0]]
    for asset, keys in README_METADATA.items():
        (record,) = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(asset), asset_partitions=[outcome.video_id]
            ),
            limit=1,
        ).records
        metadata = record.asset_materialization.metadata
        assert keys <= set(metadata), (asset, keys - set(metadata))
    scenes = (
        instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("scenes"), asset_partitions=[outcome.video_id]
            ),
            limit=1,
        )
        .records[0]
        .asset_materialization.metadata
    )
    assert scenes["scene_count"].value == len(outcome.scenes)
    assert scenes["cut_count"].value == len(outcome.scenes) - 1


def test_every_asset_check_ran_and_passed_for_every_good_video(indexed):
    settings, outcomes, _ = indexed
    instance = dagster_instance(settings)
    expected = {(check.asset, check.name) for check in ALL_CHECKS}  # the transcripts' too
    by_video: dict[str, dict] = {}
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
            evaluation = entry.dagster_event.event_specific_data
            checks = by_video.setdefault(evaluation.partition, {})
            checks[(evaluation.asset_key.path[-1], evaluation.check_name)] = evaluation.passed
    for name in GOOD:
        results = by_video[outcomes[name].video_id]
        assert set(results) == expected and all(results.values()), (name, results)


def test_sidecars_describe_their_scene_and_detector(indexed):
    settings, outcomes, _ = indexed
    store = stores_of(settings).objects
    scene = outcomes["bikes.mp4"].scenes[2]
    video_id = outcomes["bikes.mp4"].video_id
    sidecar = json.loads(store.get_bytes(f"sidecars/{video_id}/{scene['scene_id']}.json"))
    assert sidecar["scene_id"] == scene["scene_id"] and sidecar["index"] == 2
    assert sidecar["start_s"] == pytest.approx(scene["start_s"], abs=1e-6)
    assert sidecar["detector"]["detector"] == "fused" and "gradual_hash" in sidecar["detector"]
    assert {"schema_version", "pipeline_version", "start_frame", "end_frame"} <= set(sidecar)


def test_reindexing_twice_leaves_exactly_what_indexing_once_leaves(sample_videos, make_settings):
    settings = make_settings()
    clips = [sample_videos / "bikes.mp4", sample_videos / "realshort.mp4"]
    index_paths(clips, settings)
    stores = stores_of(settings)
    once = snapshot(stores)
    index_paths(clips, settings)
    index_paths(clips, settings)
    assert snapshot(stores) == once


def test_rerunning_with_fewer_scenes_leaves_none_of_the_old_ones(sample_videos, make_settings):
    many = make_settings(HEIMDEX_MAX_SCENE_S="0.5")
    (first,) = index_paths([sample_videos / "counter.mp4"], many)
    assert len(first.scenes) == 6
    few = make_settings()
    (second,) = index_paths([sample_videos / "counter.mp4"], few)
    assert len(second.scenes) == 1
    state = snapshot(stores_of(few))
    assert len(state["scenes"]) == 1
    assert sorted(k for k in state["objects"] if k.startswith(("sidecars/", "thumbnails/"))) == [
        f"sidecars/{second.video_id}/{second.scenes[0]['scene_id']}.json",
        second.scenes[0]["thumbnail_key"],
    ]
    (rows,) = state["tables"].values()
    assert [r[0] for r in rows] == [second.scenes[0]["scene_id"]]


def test_a_failing_blocking_check_stops_downstream_and_fails_the_video(
    sample_videos, make_settings
):
    settings = make_settings()
    stores = stores_of(settings)
    instance = dagster_instance(settings)
    path = copy_with_name(sample_videos / "realshort.mp4", Path(settings.home) / "in", "clip.mp4")
    (outcome,) = index_paths([path], settings)
    assert outcome.state == "indexed"
    with stores.catalog.session() as session:  # the catalog now disagrees with the file
        session.execute(update(Video).where(Video.id == outcome.video_id).values(duration_s=99.0))
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    result = job.get_subset(asset_selection={dg.AssetKey("scenes"), dg.AssetKey("thumbnails")})
    result = result.execute_in_process(
        instance=instance,
        partition_key=outcome.video_id,
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    assert not result.success
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"scenes"}
    with stores.catalog.session() as session:
        video = session.get(Video, outcome.video_id)
        assert video.state.value == "failed" and "scenes_tile_the_video" in video.error_text


def test_video_ids_are_stable_unique_and_valid_partition_keys(tmp_path: Path):
    names = [
        "my clip.mp4",
        "ünïcødé 映画.mkv",
        'it\'s "quoted".webm',
        "no_extension",
        ".hidden.mp4",
    ]
    ids = [video_id_for(source_uri_for(tmp_path / name)) for name in names]
    assert len(set(ids)) == len(ids)
    assert ids == [video_id_for(source_uri_for(tmp_path / name)) for name in names]
    assert ids[0].startswith("my-clip-") and ids[1].startswith("unic")
    other_folder = video_id_for(source_uri_for(tmp_path / "elsewhere" / "my clip.mp4"))
    assert other_folder != ids[0]
    for video_id in ids:
        assert all(c.isalnum() or c == "-" for c in video_id) and len(video_id) <= 60


def test_odd_file_names_index(sample_videos, make_settings, tmp_path):
    folder = tmp_path / "odd names"
    clips = [
        copy_with_name(sample_videos / "realshort.mp4", folder, name)
        for name in ["a clip with spaces.mp4", "vidéo ünicode.mp4", 'it\'s "quoted".mp4']
    ]
    clips.append(copy_with_name(sample_videos / "realshort.mp4", folder, "no_extension"))
    outcomes = index_paths(clips, make_settings())
    assert [o.state for o in outcomes] == ["indexed"] * 4, [o.error for o in outcomes]


def test_switching_the_model_builds_a_separate_table(sample_videos, make_settings, tmp_path):
    import open_clip
    import torch

    settings = make_settings()
    index_paths([sample_videos / "realshort.mp4"], settings)
    torch.manual_seed(99)
    other = tmp_path / "other-weights.pt"
    torch.save(open_clip.create_model(Path(settings.clip_model).stem).state_dict(), other)
    switched = make_settings(HEIMDEX_CLIP_PRETRAINED=str(other))
    index_paths([sample_videos / "realshort.mp4"], switched)
    tables = snapshot(stores_of(switched))["tables"]
    assert len(tables) == 2
    assert all(len(rows) == 1 for rows in tables.values())
    with stores_of(switched).catalog.session() as session:
        assert session.scalars(select(Scene)).all()


def test_transnetv2_is_a_setting_recorded_in_the_sidecars_and_the_metadata(
    sample_videos, make_settings, cuts
):
    """HEIMDEX_SHOT_DETECTOR=transnetv2 runs the network on the decode pass's frames; the scenes'
    sidecars and the `scenes` materialization say which detector made them."""
    settings = make_settings(HEIMDEX_SHOT_DETECTOR="transnetv2")
    (outcome,) = index_paths([sample_videos / "bikes.mp4"], settings)
    assert outcome.state == "indexed", outcome.error
    starts = [scene["start_s"] for scene in outcome.scenes][1:]
    truth = cuts["bikes.mp4"]["cuts_s"]
    found = sum(any(abs(s - t) <= 2 / 25 + 1e-3 for s in starts) for t in truth)
    assert found >= len(truth) - 1, (starts, truth)  # the network finds the cuts
    stores = stores_of(settings)
    key = f"sidecars/{outcome.video_id}/{outcome.scenes[0]['scene_id']}.json"
    sidecar = json.loads(stores.objects.get_bytes(key))
    assert sidecar["detector"]["detector"] == "transnetv2"
    (record,) = (
        dagster_instance(settings)
        .fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("scenes"), asset_partitions=[outcome.video_id]
            ),
            limit=1,
        )
        .records
    )
    assert record.asset_materialization.metadata["detector"].value["detector"] == "transnetv2"
