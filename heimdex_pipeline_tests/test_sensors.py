"""The inbox sensor, evaluated without a daemon: new, changed and removed videos, its cursor."""

import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import select

from heimdex_pipeline.catalog.models import Video, VideoState
from heimdex_pipeline.catalog.users import add_user
from heimdex_pipeline.catalog.video_ids import video_id_for
from heimdex_pipeline.catalog.videos import get_video, register_video, videos_with_store_keys
from heimdex_pipeline.pipeline.definitions import build_definitions
from heimdex_pipeline.pipeline.local_runs import QUIET_RUN_CONFIG
from heimdex_pipeline.pipeline.runs import partition_range, partitions_in_order
from heimdex_pipeline.pipeline.sensors.inbox import (
    REASK_AFTER_S,
    UNMEASURED_PACE,
    InboxCursor,
    build_inbox_sensor,
    run_pace,
    runs_within_budget,
    scan_inbox,
)
from heimdex_pipeline.pipeline.tags import (
    HANDLED_TAG,
    INDEX_JOB,
    LEFT_TO_RUN_RETRY,
    RUN_KEY_TAG,
    WILL_RETRY_TAG,
)
from heimdex_pipeline_tests.conftest import stores_of
from heimdex_pipeline_tests.snapshots import snapshot


def tick(settings, instance, cursor=None, batch_size=10, runs_per_tick=None) -> dg.SensorResult:
    resources = build_definitions(settings).resources
    needed = {key: resources[key] for key in ("catalog", "objects", "vectors")}
    with dg.build_sensor_context(instance=instance, resources=needed, cursor=cursor) as context:
        return build_inbox_sensor(batch_size, runs_per_tick=runs_per_tick)(context)


def asked_long_ago(stores, video_ids: list[str] | None = None) -> None:
    """Move these videos' rows (every row when None) back past the inbox's re-ask delay, as
    if their runs were asked for that long ago."""
    with stores.catalog.session() as session:
        query = select(Video) if video_ids is None else select(Video).where(Video.id.in_(video_ids))
        for row in session.scalars(query):
            row.updated_at = row.updated_at - timedelta(seconds=REASK_AFTER_S)


def apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's partition requests."""
    for request in result.dynamic_partitions_requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)


def run(settings, instance, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).resolve_job_def(INDEX_JOB)
    tags = dict(request.tags)
    if request.partition_key:
        tags["dagster/partition"] = request.partition_key
    return job.execute_in_process(
        instance=instance, tags=tags, run_config=QUIET_RUN_CONFIG, raise_on_error=False
    )


def failed_runs_sensor_on(settings, instance: dg.DagsterInstance, run: dg.DagsterRun):
    """The failed-runs sensor evaluated on a failed run, as the daemon would: its run requests."""
    defs = build_definitions(settings)
    needed = {key: defs.resources[key] for key in ("catalog", "objects", "vectors")}
    (failure,) = [
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
    ]
    sensor = next(s for s in defs.sensors if s.name == "failed_runs_fail_their_videos")
    with dg.build_run_status_sensor_context(
        sensor.name, failure, instance, run, resources=needed
    ) as context:
        return list(sensor(context.for_run_failure()) or [])


@pytest.fixture
def inbox(make_settings):
    settings = make_settings()
    stores = stores_of(settings)
    return settings, stores, dg.DagsterInstance.ephemeral()


@pytest.mark.slow
def test_new_videos_become_partitions_and_one_batched_run(inbox, sample_videos):
    settings, stores, instance = inbox
    stores.objects.put_file("incoming/street/bikes.mp4", sample_videos / "bikes.mp4")
    stores.objects.put_file("incoming/short clip.mp4", sample_videos / "realshort.mp4")
    stores.objects.put_bytes("incoming/notes.txt", b"not a video")
    stores.objects.put_bytes("incoming/.partial.mp4", b"still uploading")

    result = tick(settings, instance)
    (request,) = result.run_requests
    (add,) = result.dynamic_partitions_requests
    keys = list(add.partition_keys)
    assert len(keys) == 2 and keys[0].startswith("short-clip-") and keys[1].startswith("bikes-")
    assert request.tags["dagster/asset_partition_range_start"] == keys[0]
    assert request.tags["dagster/asset_partition_range_end"] == keys[1]
    with stores.catalog.session() as session:
        assert get_video(session, keys[1]).state is VideoState.UPLOADING
        assert get_video(session, keys[1]).store_key == "incoming/street/bikes.mp4"
    assert InboxCursor.parse(result.cursor).after is None  # the listing was read to its end

    apply(instance, result)
    assert run(settings, instance, request).success
    with stores.catalog.session() as session:
        assert {get_video(session, k).state for k in keys} == {VideoState.INDEXED}
    assert not list(stores.objects.list("inbox/")), "a video already in the store is not copied"

    again = tick(settings, instance, result.cursor)
    assert not again.run_requests and "nothing new" in again.skip_reason.skip_message


@pytest.mark.slow
def test_a_run_failed_by_bad_input_is_not_run_again(inbox, sample_videos):
    """Bad input is the file's fault: the failed-runs sensor asks for no re-run (only an outage
    earns one) and the video keeps the reason naming it; the good one stays indexed."""
    settings, stores, instance = inbox
    stores.objects.put_file("incoming/good.mp4", sample_videos / "realshort.mp4")
    stores.objects.put_bytes("incoming/garbage.mp4", b"<html>an error page</html>" * 40)
    result = tick(settings, instance)
    apply(instance, result)
    (request,) = result.run_requests
    outcome = run(settings, instance, request)
    assert not outcome.success
    assert failed_runs_sensor_on(settings, instance, outcome.dagster_run) == []
    with stores.catalog.session() as session:
        states = {get_video(session, k).store_key: get_video(session, k) for k in
                  (request.tags["dagster/asset_partition_range_start"],
                   request.tags["dagster/asset_partition_range_end"])}  # fmt: skip
    assert states["incoming/good.mp4"].state is VideoState.INDEXED
    assert states["incoming/garbage.mp4"].state is VideoState.FAILED
    assert "garbage.mp4" in states["incoming/garbage.mp4"].error_text


def test_a_tick_reads_one_page_and_the_cursor_wraps_around(inbox):
    _, stores, instance = inbox
    for number in range(7):
        stores.objects.put_bytes(f"incoming/clip-{number}.mp4", b"x")
    first = scan_inbox(stores, InboxCursor(), instance, limit=3)
    assert first.scanned == 3 and first.to_index[0][0].startswith("clip-0")
    assert first.next_cursor.after == "incoming/clip-2.mp4"
    second = scan_inbox(stores, first.next_cursor, instance, limit=3)
    third = scan_inbox(stores, second.next_cursor, instance, limit=3)
    assert third.scanned == 1 and third.next_cursor.after is None
    seen = [v for page in (first, second, third) for v, _ in page.to_index]
    assert len(seen) == len(set(seen)) == 7


def test_a_burst_is_taken_a_few_runs_a_tick_and_none_is_lost(inbox):
    """Runs cost the daemon seconds each: a tick asks for at most `max_runs`, and the rest of its
    page waits (unregistered) for the next tick, which starts where it stopped."""
    _, stores, instance = inbox
    for number in range(7):
        stores.objects.put_bytes(f"incoming/clip-{number}.mp4", b"x")
    pages, cursor = [], InboxCursor()
    for _ in range(3):
        page = scan_inbox(stores, cursor, instance, batch_size=2, max_runs=2)
        instance.add_dynamic_partitions("videos", page.new_partitions)  # what the daemon does
        for request in page.requests:
            instance.add_run(dg.DagsterRun(job_name=INDEX_JOB, run_id=str(uuid.uuid4()),
                                           tags={"dagster/run_key": request.run_key}))  # fmt: skip
        pages.append(page)
        cursor = page.next_cursor
    assert [len(p.to_index) for p in pages] == [4, 3, 0]  # 2 runs of 2, then 2 runs of 2 + 1
    assert [len(p.requests) for p in pages] == [2, 2, 0]
    assert pages[0].next_cursor.after == "incoming/clip-3.mp4"
    seen = [v for page in pages for v, _ in page.to_index]
    assert len(seen) == len(set(seen)) == 7


def made_runs(instance: dg.DagsterInstance, seconds_apart: list[float]) -> list[str]:
    """Runs the daemon made at these offsets (its clock), each under its own run key."""
    started = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    keys = [f"made-{number}@v" for number in range(len(seconds_apart))]
    for key, offset in zip(keys, seconds_apart, strict=True):
        run = dg.DagsterRun(job_name=INDEX_JOB, run_id=str(uuid.uuid4()), tags={RUN_KEY_TAG: key})
        instance.run_storage.add_historical_run(run, started + timedelta(seconds=offset))
    return keys


def test_the_pace_of_the_last_ticks_runs_is_read_from_their_creation_times(inbox):
    _, _, instance = inbox
    keys = made_runs(instance, [0, 3, 6.5, 9])  # gaps 3, 3.5, 2.5: the median is 3
    assert run_pace(instance, InboxCursor(asked=tuple(keys))) == pytest.approx(3.0)
    assert run_pace(instance, InboxCursor(asked=tuple(keys), run_pace_s=1.0)) == pytest.approx(2.0)
    # one run asked for: nothing to measure, the pace before taken a little faster
    alone = InboxCursor(asked=tuple(keys[:1]), run_pace_s=5.0)
    assert run_pace(instance, alone) == pytest.approx(5.0 * UNMEASURED_PACE)
    assert run_pace(instance, InboxCursor()) is None
    # a key asked again whose run was made an hour before is no measure of the daemon's pace
    old = made_runs(instance, [-3600])
    assert run_pace(instance, InboxCursor(asked=(*keys[:2], *old))) == pytest.approx(3.0)
    assert [runs_within_budget(p, 4) for p in (None, 0.5, 1.9, 3.0, 7.0)] == [4, 4, 3, 2, 1]


def test_a_tick_asks_for_the_runs_the_daemon_makes_within_the_budget(inbox):
    """The daemon made the last tick's runs 3 s apart: this tick asks for 2 runs (6 s of the
    daemon's), not 4, and the rest of the page waits; its cursor carries what it asked for."""
    settings, stores, instance = inbox
    for number in range(6):
        stores.objects.put_bytes(f"incoming/clip-{number}.mp4", b"x")
    last = InboxCursor(asked=tuple(made_runs(instance, [0, 3, 6]))).dump()
    result = tick(settings, instance, last, batch_size=1, runs_per_tick=4)
    assert len(result.run_requests) == 2
    cursor = InboxCursor.parse(result.cursor)
    assert cursor.asked == tuple(r.run_key for r in result.run_requests)
    assert cursor.run_pace_s == pytest.approx(3.0)
    assert cursor.after == "incoming/clip-1.mp4"  # the next tick starts after the two


def test_a_cut_page_registers_nothing_past_the_cut(inbox):
    _, stores, instance = inbox
    for number in range(5):
        stores.objects.put_bytes(f"incoming/clip-{number}.mp4", b"x")
    page = scan_inbox(stores, InboxCursor(), instance, batch_size=1, max_runs=2)
    assert len(page.requests) == 2
    with stores.catalog.session() as session:
        registered = videos_with_store_keys(session, "incoming/", None, None)
    assert sorted(registered) == ["incoming/clip-0.mp4", "incoming/clip-1.mp4"]


def test_refused_keys_take_no_place_of_a_tick(inbox):
    _, stores, instance = inbox
    with stores.catalog.session() as session:
        add_user(session, "bob")
    for number in range(3):
        stores.objects.put_bytes(f"incoming/a-nobody/{number}.mp4", b"x")
    stores.objects.put_bytes("incoming/bob/clip.mp4", b"x")
    page = scan_inbox(stores, InboxCursor(), instance, batch_size=1, max_runs=1)
    assert len(page.refused) == 3
    assert [info.key for _, info in page.to_index] == ["incoming/bob/clip.mp4"]


def test_a_key_whose_folder_became_a_user_is_refused_not_fatal(inbox):
    """Registered as the default owner's before bob existed, changed after: the tick says why
    it skips the key and goes on with the page (it used to raise and stop on that page)."""
    _, stores, instance = inbox
    stores.objects.put_bytes("incoming/bob/clip.mp4", b"x")
    first = scan_inbox(stores, InboxCursor(), instance)
    (video_id,) = [v for v, _ in first.to_index]
    with stores.catalog.session() as session:
        add_user(session, "bob")
        get_video(session, video_id).state = VideoState.INDEXED
        get_video(session, video_id).source_version = "an older version"
    stores.objects.put_bytes("incoming/bob/other.mp4", b"y")
    page = scan_inbox(stores, InboxCursor(), instance)
    (refusal,) = page.refused
    assert "incoming/bob/clip.mp4" in refusal and f"heimdex delete {video_id}" in refusal
    assert [info.key for _, info in page.to_index] == ["incoming/bob/other.mp4"]


def test_an_uploaded_video_gets_its_run_on_the_next_tick_also_when_it_comes_back(inbox):
    """The upload endpoint registers its row before any tick: no run was asked for yet, so
    there is no re-ask delay to wait out; a deleted video uploaded again is the same."""
    settings, stores, instance = inbox
    stores.objects.put_bytes(KEY := "incoming/up.mp4", b"x")
    uri = stores.objects.uri(KEY)
    with stores.catalog.session() as session:
        register_video(session, video_id_for(uri), uri, "up.mp4", owner="local", store_key=KEY)
    first = tick(settings, instance)
    (request,) = first.run_requests
    instance.add_run(
        dg.DagsterRun(
            job_name=INDEX_JOB, run_id=str(uuid.uuid4()), tags={"dagster/run_key": request.run_key}
        )
    )
    with stores.catalog.session() as session:
        row = get_video(session, video_id_for(uri))
        row.state = VideoState.DELETED
    with stores.catalog.session() as session:
        register_video(session, video_id_for(uri), uri, "up.mp4", owner="local", store_key=KEY)
    again = tick(settings, instance)  # the old run was the deleted video's, not this one's
    (back,) = again.run_requests
    # the same bytes, so the same version on S3: a new key all the same, or Dagster skips it
    assert back.run_key != request.run_key
    asked_long_ago(stores, [video_id_for(uri)])  # its run never came: asked again, same key
    assert [r.run_key for r in tick(settings, instance).run_requests] == [back.run_key]


def test_a_registered_video_is_asked_for_again_only_if_its_run_never_came(inbox):
    settings, stores, instance = inbox
    stores.objects.put_bytes("incoming/a.mp4", b"x")
    first = tick(settings, instance)
    (request,) = first.run_requests
    # its run may still be on its way (the failed-runs sensor's re-run, under another key)
    assert not tick(settings, instance).run_requests
    (video_id,) = first.dynamic_partitions_requests[0].partition_keys
    asked_long_ago(stores, [video_id])
    lost = tick(settings, instance)  # the first tick's runs were never created: asked again
    assert [r.run_key for r in lost.run_requests] == [request.run_key]
    instance.add_run(
        dg.DagsterRun(
            job_name=INDEX_JOB, run_id=str(uuid.uuid4()), tags={"dagster/run_key": request.run_key}
        )
    )
    assert not tick(settings, instance).run_requests


@pytest.mark.slow
def test_changed_content_at_a_known_key_is_indexed_again(inbox, sample_videos):
    settings, stores, instance = inbox
    stores.objects.put_file("incoming/clip.mp4", sample_videos / "realshort.mp4")
    first = tick(settings, instance)
    apply(instance, first)
    assert run(settings, instance, first.run_requests[0]).success
    (video_id,) = first.dynamic_partitions_requests[0].partition_keys
    with stores.catalog.session() as session:
        before = get_video(session, video_id).sha256

    stores.objects.put_file("incoming/clip.mp4", sample_videos / "bikes.mp4")
    changed = tick(settings, instance)
    (request,) = changed.run_requests
    assert request.partition_key == video_id and not changed.dynamic_partitions_requests
    assert run(settings, instance, request).success
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        assert video.sha256 != before and video.state is VideoState.INDEXED
        assert video.duration_s == pytest.approx(10.0)


@pytest.mark.slow
def test_a_removed_object_deletes_its_video_everywhere(inbox, sample_videos):
    settings, stores, instance = inbox
    stores.objects.put_file("incoming/keep.mp4", sample_videos / "realshort.mp4")
    stores.objects.put_file("incoming/gone.mp4", sample_videos / "counter.mp4")
    first = tick(settings, instance)
    apply(instance, first)
    assert run(settings, instance, first.run_requests[0]).success
    keep, gone = sorted(first.dynamic_partitions_requests[0].partition_keys,
                        key=lambda k: not k.startswith("keep"))  # fmt: skip

    stores.objects.delete("incoming/gone.mp4")
    result = tick(settings, instance)
    assert not result.run_requests
    (delete,) = result.dynamic_partitions_requests
    assert list(delete.partition_keys) == [gone]
    apply(instance, result)
    assert not instance.has_dynamic_partition("videos", gone)
    state = snapshot(stores)
    everything = [*state["objects"], *state["frames"]]
    assert not [k for k in everything if gone in k]
    assert not [s for s in state["scenes"] if s[1] == gone]
    assert not [r for rows in state["tables"].values() for r in rows if r[1] == gone]
    assert [k for k in everything if keep in k]
    with stores.catalog.session() as session:
        assert get_video(session, gone).state is VideoState.DELETED


HOSTILE_KEYS = [
    "incoming/../escape.mp4",
    "incoming/./dot.mp4",
    "incoming//double.mp4",
    "incoming/back\\slash.mp4",
    "incoming/tab\there.mp4",
]


@pytest.mark.slow
def test_hostile_keys_in_incoming_are_refused_and_the_rest_indexes(
    make_settings, s3_env, sample_videos
):
    """Keys that S3 accepts but no path should ever be (`..`, `.`, empty parts, backslashes,
    control characters), written straight to the bucket: the tick skips each, naming it and the
    reason, and registers nothing for it; the good video beside them is indexed."""
    settings = make_settings(**s3_env)
    stores = stores_of(settings)
    stores.objects.put_file("incoming/good.mp4", sample_videos / "realshort.mp4")
    data = (sample_videos / "realshort.mp4").read_bytes()
    for key in HOSTILE_KEYS:  # the minio client refuses these names: a raw PUT does not
        name = urllib.parse.quote(stores.objects.prefix + key, safe="/")
        url = f"http://{s3_env['HEIMDEX_S3_ENDPOINT']}/{stores.objects.bucket}/{name}"
        headers = {"Content-Type": "application/octet-stream"}
        request = urllib.request.Request(url, data=data, method="PUT", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    listed = {info.key for info in stores.objects.list_page("incoming/").objects}
    assert set(HOSTILE_KEYS) <= listed  # the bucket really holds them
    instance = dg.DagsterInstance.ephemeral()
    result = tick(settings, instance)
    apply(instance, result)
    (request,) = result.run_requests
    assert request.partition_key and request.partition_key.startswith("good-")
    refused = scan_inbox(stores, InboxCursor.parse(None), instance).refused  # the tick's warnings
    assert len(refused) == len(HOSTILE_KEYS)
    for key, line in zip(sorted(HOSTILE_KEYS), refused, strict=True):
        assert repr(key) in line and "rename or remove" in line
    with stores.catalog.session() as session:
        from heimdex_pipeline.catalog.models import Video

        assert [v.title for v in session.query(Video)] == ["good.mp4"]
    assert run(settings, instance, request).success
    result = tick(settings, instance)  # the wrapped listing comes back to them: still refused
    assert not result.run_requests


def test_a_run_dagster_will_retry_is_left_to_the_retry(make_settings, sample_videos, tmp_path):
    """A run that failed outside its steps (here its CLIP worker could not start) on an instance
    with run retries: Dagster tags it `dagster/will_retry` and will run it again, so the
    failed-runs sensor neither marks its videos failed nor asks for a run of its own (the two
    would race on the same videos); it says so on the run."""
    settings = make_settings(HEIMDEX_CLIP_PRETRAINED=str(tmp_path / "no-such-weights.pt"))
    stores = stores_of(settings)
    instance = dg.DagsterInstance.ephemeral(
        settings={"run_retries": {"enabled": True, "max_retries": 2}}
    )
    stores.objects.put_file("incoming/good.mp4", sample_videos / "realshort.mp4")
    result = tick(settings, instance)
    apply(instance, result)
    (request,) = result.run_requests
    outcome = run(settings, instance, request)
    assert not outcome.success
    failed = instance.get_run_by_id(outcome.dagster_run.run_id)
    assert failed.tags.get(WILL_RETRY_TAG) == "true"  # Dagster's own decision, not ours
    assert failed_runs_sensor_on(settings, instance, failed) == []
    assert instance.get_run_by_id(failed.run_id).tags[HANDLED_TAG] == LEFT_TO_RUN_RETRY
    with stores.catalog.session() as session:
        row = get_video(session, request.partition_key)
    assert row.state is VideoState.UPLOADING and not row.error_text  # the retry takes it on


def lost_retries_sensor_on(settings, instance: dg.DagsterInstance, grace_s: float):
    """The lost-retries sensor evaluated once, as the daemon would."""
    from heimdex_pipeline.pipeline.sensors.lost_retries import build_lost_retries_sensor

    defs = build_definitions(settings)
    needed = {key: defs.resources[key] for key in ("catalog", "objects", "vectors")}
    sensor = build_lost_retries_sensor(settings.outage_reruns, grace_s=grace_s)
    with dg.build_sensor_context(instance=instance, resources=needed) as context:
        return sensor(context)


def test_a_run_whose_retry_never_came_is_run_again(make_settings, sample_videos, tmp_path):
    """A run left to Dagster's retry that got none (no daemon here, as when launching the retry
    failed while PostgreSQL restarted): within the grace it is left alone; past it, its videos
    are queued and run again once, tagged as an outage re-run, and the run says what was done.
    A run whose retry did come is only tagged with it."""
    from heimdex_pipeline.pipeline.tags import ATTEMPT_TAG, RERUN_OF_TAG

    weights = tmp_path / "no-such-weights.pt"
    settings = make_settings(HEIMDEX_CLIP_PRETRAINED=str(weights))
    stores = stores_of(settings)
    instance = dg.DagsterInstance.ephemeral(
        settings={"run_retries": {"enabled": True, "max_retries": 2}}
    )
    stores.objects.put_file("incoming/good.mp4", sample_videos / "realshort.mp4")
    stores.objects.put_file("incoming/other.mp4", sample_videos / "bikes.mp4")
    result = tick(settings, instance, batch_size=1)
    apply(instance, result)
    first, second = result.run_requests
    failed = [run(settings, instance, r).dagster_run for r in (first, second)]
    for one in failed:
        assert failed_runs_sensor_on(settings, instance, one) == []
    # the second run's retry came (a run re-executing it, as the daemon makes)
    retry = instance.create_run_for_job(
        build_definitions(settings).resolve_job_def(INDEX_JOB),
        tags={"dagster/parent_run_id": failed[1].run_id, "dagster/retry_number": "1"},
        parent_run_id=failed[1].run_id,
        root_run_id=failed[1].run_id,
    )
    assert isinstance(lost_retries_sensor_on(settings, instance, grace_s=3600), dg.SkipReason)
    assert instance.get_run_by_id(failed[0].run_id).tags[HANDLED_TAG] == LEFT_TO_RUN_RETRY
    assert instance.get_run_by_id(failed[1].run_id).tags[HANDLED_TAG] == (
        f"retried as {retry.run_id[:8]}"
    )
    (again,) = lost_retries_sensor_on(settings, instance, grace_s=0)
    assert again.partition_key == first.partition_key
    assert again.tags[ATTEMPT_TAG] == "1" and again.tags[RERUN_OF_TAG] == failed[0].run_id
    handled = instance.get_run_by_id(failed[0].run_id).tags[HANDLED_TAG]
    assert handled == "Dagster's run retry never came: 1 run again, 0 marked failed"
    with stores.catalog.session() as session:
        row = get_video(session, first.partition_key)
        assert row.state is VideoState.UPLOADING and row.run_key == again.run_key
        assert "run again (1 of" in row.error_text
    assert isinstance(lost_retries_sensor_on(settings, instance, grace_s=0), dg.SkipReason)


@pytest.mark.parametrize("storage", ["sqlite", "in memory"])
def test_a_run_range_is_read_without_listing_every_partition(storage, tmp_path, monkeypatch):
    """The failed-runs sensor reads a ranged run's videos, and `heimdex backfill` orders its
    videos: in the instance's order (a partition deleted and added again goes to the end), and
    on SQL storage without reading them all."""
    if storage == "sqlite":
        instance = dg.DagsterInstance.local_temp(str(tmp_path))
    else:
        instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("videos", ["a", "b", "c", "d", "e"])
    instance.delete_dynamic_partition("videos", "c")
    instance.add_dynamic_partitions("videos", ["c"])
    if storage == "sqlite":
        monkeypatch.setattr(instance, "get_dynamic_partitions", lambda name: pytest.fail("read"))
    assert partition_range(instance, "b", "e") == ["b", "d", "e"]
    assert partition_range(instance, "a", "c") == ["a", "b", "d", "e", "c"]
    assert partition_range(instance, "b", "gone") == ["b"]
    # a backfill's videos put in that order, the same way (one that is no partition left out)
    assert partitions_in_order(instance, ["c", "gone", "e", "a"]) == ["a", "e", "c"]
