"""The chain is a graph built from what each stage declares it reads: stages off the one line
drop in, each branch concludes for its own videos, and the builder refuses a bad graph.

Toy stages (their work only records what they saw) on the real builder, stores and Dagster
instance; nothing here decodes a video."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from heimdex_pipeline.catalog.database import upgrade
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.pipeline.handoff import Handoff, HandoffIOManager
from heimdex_pipeline.pipeline.partitions import videos
from heimdex_pipeline.pipeline.resources import build_resources
from heimdex_pipeline.pipeline.stages.base import Outcome, Stage, StageContext, StageResult
from heimdex_pipeline.pipeline.stages.graph import build_chain, in_order
from heimdex_pipeline.stores import open_stores

VIDEOS = ["v1", "v2", "v3"]


def toy(name: str, reads: tuple[str, ...], seen: dict, fails: str | None = None) -> Stage:
    """A stage that notes which videos reached it, and fails `fails` as bad input."""

    def work(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
        seen[name] = list(video_ids)
        for video_id in video_ids:
            if video_id == fails:
                yield video_id, InvalidVideoError(video_id, f"{name} refuses it")
            else:
                yield video_id, StageResult(metadata={"stage": name})

    return Stage(
        asset=name, work=work, description=name, group="toy", kinds=frozenset(), reads=reads
    )


@pytest.fixture
def run_graph(make_settings):
    settings = make_settings()
    upgrade(settings.database_url)
    stores = open_stores(settings)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(videos.name, VIDEOS)

    def run(stages: list[Stage], selection: list[str] | None = None):
        chain = build_chain(stages, dg.RetryPolicy(max_retries=0), batch_size=10)
        resources = dict(build_resources(settings))
        resources["handoff_io_manager"] = HandoffIOManager(objects=resources["objects"])
        job = dg.define_asset_job(
            "toy", selection=selection or [s.asset for s in stages], partitions_def=videos
        )
        defs = dg.Definitions(
            assets=[chain], jobs=[job], resources=resources, executor=dg.in_process_executor
        )
        result = defs.resolve_job_def("toy").execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": VIDEOS[0],
                "dagster/asset_partition_range_end": VIDEOS[-1],
            },
            raise_on_error=False,
        )
        return result, stores

    return run


def materialized(result, asset: str) -> set[str]:
    return {
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    }


def test_a_stage_beside_the_line_and_one_after_a_middle_stage_drop_in(run_graph):
    seen: dict = {}
    stages = [
        toy("first", (), seen),
        toy("middle", ("first",), seen),
        toy("last", ("middle",), seen),
        toy("beside", ("first",), seen),  # reads the first stage alone, like transcripts
        toy("after_middle", ("middle",), seen),  # reads a middle stage, like faces
    ]
    result, stores = run_graph(stages)
    assert result.success
    for stage in stages:
        assert materialized(result, stage.asset) == set(VIDEOS), stage.asset
    assert seen["beside"] == VIDEOS and seen["after_middle"] == VIDEOS
    # both branches succeeded: the last of them removed the run's handoffs
    assert not list(stores.objects.list(f"runs/{result.run_id}/"))


def test_each_branch_concludes_for_its_own_videos(run_graph):
    seen: dict = {}
    stages = [
        toy("first", (), seen),
        toy("middle", ("first",), seen),
        toy("last", ("middle",), seen),
        toy("beside", ("first",), seen, fails="v2"),
    ]
    result, stores = run_graph(stages)
    assert not result.success
    assert materialized(result, "last") == set(VIDEOS)  # the other branch is not held back
    assert materialized(result, "beside") == {"v1", "v3"}
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key.endswith("beside")
    assert "v2: beside: v2: beside refuses it" in failure.step_failure_data.error.message
    assert list(stores.objects.list(f"runs/{result.run_id}/")), "kept for re-executing the failure"


def test_a_failure_upstream_reaches_every_branch_and_a_reader_of_two_stages(run_graph):
    seen: dict = {}
    stages = [
        toy("first", (), seen, fails="v1"),
        toy("middle", ("first",), seen),
        toy("beside", ("first",), seen),
        toy("both", ("middle", "beside"), seen),  # reads two stages: what both passed on
    ]
    result, _ = run_graph(stages)
    assert not result.success
    assert seen["middle"] == seen["beside"] == seen["both"] == ["v2", "v3"]
    assert materialized(result, "both") == {"v2", "v3"}


def test_a_run_of_one_branch_runs_only_what_it_reads(run_graph):
    seen: dict = {}
    stages = [
        toy("first", (), seen),
        toy("middle", ("first",), seen),
        toy("last", ("middle",), seen),
        toy("beside", ("first",), seen),
    ]
    result, _ = run_graph(stages, selection=["beside"])
    assert result.success
    assert materialized(result, "beside") == set(VIDEOS)
    assert materialized(result, "first") == set()  # passed the batch through, not re-made
    assert "middle" not in seen and "last" not in seen


def test_handoffs_merge_as_their_readers_need():
    merged = Handoff.merge(
        [
            Handoff(["a", "b", "c"], failed={"d": "x"}),
            Handoff(["c", "a"], failed={"b": "y"}, outages=["b"]),
        ]
    )
    assert merged.videos == ["a", "c"]
    assert merged.failed == {"d": "x", "b": "y"} and merged.outages == ["b"]


def test_the_builder_names_an_unknown_stage_and_a_cycle():
    seen: dict = {}
    with pytest.raises(ValueError, match="reads unknown stages"):
        in_order([toy("a", ("nowhere",), seen)])
    with pytest.raises(ValueError, match="read each other"):
        in_order([toy("a", ("b",), seen), toy("b", ("a",), seen)])
    order = in_order([toy("c", ("b",), seen), toy("b", ("a",), seen), toy("a", (), seen)])
    assert [stage.asset for stage in order] == ["a", "b", "c"]
