"""Small soaks under `dagster dev` on a PostgreSQL instance and the S3 server, with PostgreSQL
restarted, or the S3 server stopped, while runs are in flight (`benchmarks/soak.py` runs the
full one for the README).

PostgreSQL goes down for 3 s once a run's `scenes` step has started (its STEP_START in the
event log), and steps are not retried, so the restart fails the run it strikes (asserted): once
PostgreSQL is back the failed-runs sensor must see an outage, not bad input, and run those
videos again by itself (no operator), nothing half-made may stay, and the bad files must fail,
each naming itself. Step retries riding out an outage are tested in test_secrets_and_retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak import BAD_INPUTS, soak
from heimdex_pipeline.pipeline.tags import HANDLED_TAG
from heimdex_pipeline_tests.conftest import chromium_page

pytestmark = pytest.mark.slow

GOOD, BAD = 12, 3
# The sensors look every 5 s, not 30: the same ticks, sooner (more of them, so more chances to
# take a file twice)
SENSOR_INTERVAL_S = 5
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def soaked(tiny_clip):
    result = soak(
        GOOD,
        BAD,
        clip_model=tiny_clip[0],
        clip_pretrained=tiny_clip[1],
        batch_size=4,
        restart_postgres=True,
        postgres_down_s=3,
        strike_at_step="video_chain.scenes",
        step_retries=0,
        timeout_s=900,
        sensor_interval_s=SENSOR_INTERVAL_S,
    )
    ARTIFACTS.mkdir(exist_ok=True)  # every run, how it ended and why: for a failure's post-mortem
    (ARTIFACTS / "soak-postgres-runs.txt").write_text(
        "\n".join([*result.run_log, "", *result.tick_log]) + "\n"
    )
    return result


def test_every_good_video_ends_indexed_and_every_bad_one_failed_naming_itself(soaked):
    assert soaked.postgres_restarted_at_s is not None
    assert soaked.struck, soaked.run_log  # the restart failed a run of good videos...
    # ...and they ran again by themselves: each struck run through the failed-runs sensor's
    # outage re-run, or Dagster's run retry (a run that crashed outside its steps); the inbox
    # asking again for a video whose re-run never came is a last resort, not counted here
    assert None not in soaked.recovered.values(), (soaked.recovered, soaked.tick_log)
    assert soaked.indexed == GOOD, soaked.failed
    assert soaked.reruns == 0, soaked.rerun  # no operator was needed
    bad_names = list(BAD_INPUTS)[:BAD]
    assert sorted(soaked.failed) == sorted(bad_names)
    for name, reason in soaked.failed.items():
        assert name in reason, (name, reason)


def test_the_sensor_took_every_file_once_across_the_restart(soaked):
    assert soaked.never_taken == [] and soaked.taken_twice == []
    assert soaked.sensor_runs >= (GOOD + BAD) // 4


def test_the_catalog_the_objects_and_the_vectors_agree_exactly(soaked):
    assert soaked.mismatches == []


def test_the_peak_memory_of_a_run_was_measured(soaked):
    assert 100 < soaked.peak_run_rss_mb < 8000  # a run process and its CLIP worker were seen


@pytest.fixture(scope="module")
def s3_outage(tiny_clip):
    seen: dict = {}
    result = soak(
        6,
        1,
        clip_model=tiny_clip[0],
        clip_pretrained=tiny_clip[1],
        batch_size=3,
        step_retries=0,
        s3_outage_s=15,
        strike_at_step="video_chain.scenes",  # a run reading and writing the store, struck
        timeout_s=900,
        sensor_interval_s=SENSOR_INTERVAL_S,
        while_up=lambda port, instance: seen.update(look_at_the_reruns(port, instance)),
    )
    return result, seen


def look_at_the_reruns(port: int, instance) -> dict:
    """In the Dagster UI: the runs list with the sensor's re-runs, a failed run with what the
    sensor did about it, and a re-run with its attempt. Screenshots go to artifacts/."""
    import dagster as dg
    from playwright.sync_api import expect

    from benchmarks._runs import graphql
    from heimdex_pipeline.pipeline.tags import ATTEMPT_TAG, RERUN_OF_TAG

    runs = instance.get_runs()
    reruns = [r for r in runs if ATTEMPT_TAG in r.tags]
    # a re-run may fail for bad input alone: the bad file, read while the store was down,
    # failed for the outage first and was run again like the good ones
    failed_reruns = {
        r.run_id[:8]: failed_videos(instance, r.run_id)
        for r in reruns
        if r.status is not dg.DagsterRunStatus.SUCCESS
    }
    seen = {"reruns": len(reruns), "failed_reruns": failed_reruns}
    rerun = next((r for r in reruns if r.status is dg.DagsterRunStatus.SUCCESS), None)
    if rerun is None:
        return seen
    failed = instance.get_run_by_id(rerun.tags[RERUN_OF_TAG])
    assert failed is not None and failed.status is dg.DagsterRunStatus.FAILURE
    ARTIFACTS.mkdir(exist_ok=True)
    graphql(port, "mutation { setNuxSeen }")
    with chromium_page() as page:
        handled = failed.tags[HANDLED_TAG]
        page.goto(f"http://127.0.0.1:{port}/runs")
        expect(page.get_by_text(f"{ATTEMPT_TAG}: 1").first).to_be_visible(timeout=60_000)
        expect(page.get_by_text(f"{HANDLED_TAG}: {handled}").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "dagster-runs-outage-reruns.png"))
        for run, shot in [(failed, "dagster-run-failed-by-outage.png"),
                          (rerun, "dagster-outage-rerun.png")]:  # fmt: skip
            page.goto(f"http://127.0.0.1:{port}/runs/{run.run_id}")
            page.get_by_text("View tags and config").first.click(timeout=60_000)
            tag = HANDLED_TAG if run is failed else RERUN_OF_TAG
            expect(page.get_by_text(tag).first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(1000)  # the dialog fades in
            page.screenshot(path=str(ARTIFACTS / shot))
    return seen | {"handled": handled}


def failed_videos(instance, run_id: str) -> list[str]:
    """The videos a run's steps failed (their verdicts' `failed_videos`); a step that crashed
    without a verdict counts as `<crashed>`."""
    import dagster as dg

    from heimdex_pipeline.pipeline.tags import FAILED_VIDEOS

    failed: set[str] = set()
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE}
    ).records
    for record in records:
        verdict = record.event_log_entry.dagster_event.event_specific_data.user_failure_data
        named = verdict.metadata.get(FAILED_VIDEOS) if verdict is not None else None
        failed |= set(named.value) if named is not None else {"<crashed>"}
    return sorted(failed) or ["<crashed>"]


def test_an_s3_outage_heals_without_an_operator(s3_outage):
    """The S3 server (objects and vector tables) stops for 15 s once a run's `scenes` step has
    started (its STEP_START in the event log; "3 s into the first run" struck nothing once, on
    a loaded machine, before the run reached the store): the runs it strikes fail, the
    failed-runs sensor sees an outage and runs those videos again (each re-run waiting for the
    stores), and every good video ends indexed with no manual re-run; the bad file fails naming
    itself, and the stores agree."""
    s3_outage, _ = s3_outage
    assert s3_outage.s3_stopped_at_s is not None
    assert s3_outage.struck, s3_outage.run_log  # the outage failed a run of good videos
    assert s3_outage.outage_reruns >= 1, s3_outage.run_log
    assert s3_outage.reruns == 0, (s3_outage.rerun, s3_outage.failed, s3_outage.run_log)
    assert s3_outage.indexed == 6, (s3_outage.failed, s3_outage.run_log)
    (name,) = s3_outage.failed
    assert name in s3_outage.failed[name]
    assert s3_outage.never_taken == [] and s3_outage.taken_twice == []
    assert s3_outage.mismatches == []


def test_the_ui_shows_the_reruns_and_what_the_sensor_did(s3_outage):
    _, seen = s3_outage
    assert seen["reruns"] > len(seen["failed_reruns"]), seen  # a re-run of good videos succeeded
    assert seen["handled"].endswith("marked failed") and "run again" in seen["handled"]
    for videos in seen["failed_reruns"].values():  # only the bad file fails a re-run
        assert videos and all(v.startswith("bad-") for v in videos), seen["failed_reruns"]
