"""A small soak under `dagster dev` on a PostgreSQL instance and the S3 server, with PostgreSQL
restarted while runs are in flight (`benchmarks/soak.py` runs the full one for the README).

Steps are not retried here, so the restart usually fails the run it strikes: the failed-runs
sensor must mark its videos failed once PostgreSQL is back, nothing half-made may stay, and the
operator's re-run of every failed video must index the good ones (and fail the bad ones again,
each naming itself). Step retries riding out an outage are tested in test_secrets_and_retries."""

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
    if soaked.failed_by_restart:  # the operator's re-run really ran
        assert soaked.reruns >= 1 and set(soaked.failed_by_restart) <= set(soaked.rerun)
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
