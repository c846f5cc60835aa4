"""Small soaks under `dagster dev` on a PostgreSQL instance and the S3 server, with PostgreSQL
restarted, or the S3 server stopped, while runs are in flight (`benchmarks/soak.py` runs the
full one for the README).

Steps are not retried here, so the restart usually fails the run it strikes: once PostgreSQL
is back the failed-runs sensor must see an outage, not bad input, and run those videos again by
itself (no operator), nothing half-made may stay, and the bad files must fail, each naming
itself. Step retries riding out an outage are tested in test_secrets_and_retries."""

from __future__ import annotations

import pytest

from benchmarks.soak import BAD_INPUTS, soak

pytestmark = pytest.mark.slow

GOOD, BAD = 12, 3


@pytest.fixture(scope="module")
def soaked(tiny_clip):
    return soak(
        GOOD,
        BAD,
        clip_model=tiny_clip[0],
        clip_pretrained=tiny_clip[1],
        batch_size=4,
        restart_postgres=True,
        step_retries=0,
        timeout_s=900,
    )


def test_every_good_video_ends_indexed_and_every_bad_one_failed_naming_itself(soaked):
    assert soaked.postgres_restarted_at_s is not None  # the fault really struck mid-run
    assert soaked.indexed == GOOD, soaked.failed
    assert soaked.reruns == 0, soaked.rerun  # no operator was needed
    if soaked.struck:  # the restart failed a run of good videos: the sensor ran them again
        assert soaked.outage_reruns >= 1, soaked
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
    return soak(
        6,
        1,
        clip_model=tiny_clip[0],
        clip_pretrained=tiny_clip[1],
        batch_size=3,
        step_retries=0,
        s3_outage_s=15,
        timeout_s=900,
    )


def test_an_s3_outage_heals_without_an_operator(s3_outage):
    """The S3 server (objects and vector tables) stops for 15 s, 3 s into the first run: the
    runs it strikes fail, the failed-runs sensor sees an outage and runs those videos again
    (each re-run waiting for the stores), and every good video ends indexed with no manual
    re-run; the bad file fails naming itself, and the stores agree."""
    assert s3_outage.s3_stopped_at_s is not None
    assert s3_outage.struck, s3_outage.run_log  # the outage failed a run of good videos
    assert s3_outage.outage_reruns >= 1, s3_outage.run_log
    assert s3_outage.reruns == 0, s3_outage.rerun
    assert s3_outage.indexed == 6, (s3_outage.failed, s3_outage.run_log)
    (name,) = s3_outage.failed
    assert name in s3_outage.failed[name]
    assert s3_outage.never_taken == [] and s3_outage.taken_twice == []
    assert s3_outage.mismatches == []
