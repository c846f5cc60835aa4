"""The inbox sensor, evaluated without a daemon, and the run it asks for."""

import dagster as dg

from heimdex_pipeline.assets import ALL_ASSETS
from heimdex_pipeline.catalog.videos import get_video
from heimdex_pipeline.checks import ALL_CHECKS
from heimdex_pipeline.indexing import QUIET_RUN_CONFIG
from heimdex_pipeline.resources import build_resources
from heimdex_pipeline.sensors import MAX_NEW_VIDEOS_PER_TICK, inbox_sensor


def test_new_videos_in_incoming_become_partitions_and_runs(sample_videos, make_settings):
    settings = make_settings()
    resources = build_resources(settings)
    store = resources["objects"].store()
    store.put_file("incoming/street/bikes.mp4", sample_videos / "bikes.mp4")
    store.put_file("incoming/short clip.mp4", sample_videos / "realshort.mp4")
    store.put_bytes("incoming/notes.txt", b"not a video")
    store.put_bytes("incoming/.partial.mp4", b"still uploading")
    instance = dg.DagsterInstance.ephemeral()

    context = dg.build_sensor_context(instance=instance, resources=resources)
    result = inbox_sensor(context)
    keys = sorted(request.partition_key for request in result.run_requests)
    assert len(keys) == 2 and keys[0].startswith("bikes-") and keys[1].startswith("short-clip-")
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == keys
    with resources["catalog"].session() as session:
        assert get_video(session, keys[0]).state.value == "uploading"

    instance.add_dynamic_partitions("videos", keys)
    again = inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert not again.run_requests and "no new videos" in again.skip_reason.skip_message

    run = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        partition_key=keys[0],
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN_CONFIG,
    )
    assert run.success
    with resources["catalog"].session() as session:
        assert get_video(session, keys[0]).state.value == "indexed"
    assert not [i.key for i in store.list("inbox/")], "a video already in the store is not copied"


def test_a_tick_takes_a_bounded_number_of_videos(make_settings):
    resources = build_resources(make_settings())
    store = resources["objects"].store()
    for number in range(MAX_NEW_VIDEOS_PER_TICK + 5):
        store.put_bytes(f"incoming/clip-{number:03d}.mp4", b"x")
    instance = dg.DagsterInstance.ephemeral()
    first = inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert len(first.run_requests) == MAX_NEW_VIDEOS_PER_TICK
    instance.add_dynamic_partitions("videos", [r.partition_key for r in first.run_requests])
    second = inbox_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert len(second.run_requests) == 5
