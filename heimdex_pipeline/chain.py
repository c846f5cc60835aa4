"""The chain as Dagster runs it: many videos per run, and the truth about each one.

Five stages (raw_videos → scenes → thumbnails → embeddings → search_index), each an op of one
graph-backed asset definition, run together on the in-process executor: one process per run,
CLIP loaded once, frames embedded in batches across videos. A run covers a range of the `videos`
partitions (a backfill chunk, a sensor tick's new videos, a `heimdex index` call).

Dagster would copy one result to every partition of a range, so no stage returns one. Each stage
logs one materialization per video it finished, with that video's metadata, and one evaluation
per video for each of its checks; a video that fails (bad input, a failed blocking check, a
transient fault that outlived its retries) is marked `failed` with the step and the reason, loses
what was made of it, and drops out of the batch while the others go on. The stages hand each
other the list of videos still going through the object store (so a re-execution can run on
another machine), and the run's last stage fails the run, naming every failed video, if any did:
the UI then shows exactly those partitions failed and the others materialized.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import dagster as dg
from dagster import DagsterEventType

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import UnknownVideoError, videos_by_id
from heimdex_pipeline.checks import Check, CheckOutcome, checks_of
from heimdex_pipeline.keys import run_handoff_key, run_prefix
from heimdex_pipeline.lifecycle import fail_video
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.media.frames import SampleSettings
from heimdex_pipeline.partitions import videos as videos_partitions
from heimdex_pipeline.resources import (
    ClipResource,
    ObjectStoreResource,
    PipelineResource,
)
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.transient import describe, is_transient, wait_for_stores

# partitions_def on a check spec is "preview" in Dagster 1.13, and needed: without it a check on
# a dynamically partitioned asset reads the wrong partition. Known, so not shown on every command.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

T = TypeVar("T")
HANDOFF = "handoff"
# Runs tagged so (the reembed_videos job) leave a video as it was when its new embedding fails:
# it stays indexed under the model search serves, and the new model's table simply lacks it.
MODE_TAG = "heimdex/mode"
REEMBED_MODE = "reembed"
# The run's failure names the videos an outage failed, for the failed-runs sensor to run again;
# its re-runs carry the attempt and the failed run (`outage_reruns.py`).
OUTAGE_VIDEOS = "outage_videos"
ATTEMPT_TAG = "heimdex/outage_rerun"  # 1 for the first re-run of videos an outage failed
RERUN_OF_TAG = "heimdex/rerun_of"
STAGE_RESOURCES = {"catalog", "objects", "vectors", "pipeline"}


@dataclass(frozen=True)
class StageResult:
    """What a stage made of one video: the metadata of its materialization."""

    metadata: dict[str, object]


Outcome = StageResult | Exception


@dataclass
class StageContext:
    """What a stage's work may use: the stores, the knobs, CLIP (embeddings only), the log."""

    stores: Stores
    pipeline: PipelineResource
    log: dg.DagsterLogManager
    clip: ClipResource | None = None

    @property
    def sampling(self) -> SampleSettings:
        return self.pipeline.sampling()


StageWork = Callable[[StageContext, list[str]], Iterator[tuple[str, Outcome]]]


@dataclass(frozen=True)
class Stage:
    """One asset of the chain: its work over a batch of videos and how it shows in Dagster."""

    asset: str
    work: StageWork
    description: str
    group: str
    kinds: frozenset[str]
    resources: frozenset[str] = frozenset(STAGE_RESOURCES)
    pool: str | None = None

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey(self.asset)

    @property
    def checks(self) -> list[Check]:
        return checks_of(self.asset)


def one_at_a_time(work: Callable[[StageContext, str], StageResult]) -> StageWork:
    """A stage's batch work from its work on one video; each error stays with its video."""

    def over_batch(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
        for video_id in video_ids:
            try:
                yield video_id, work(context, video_id)
            except Exception as error:
                yield video_id, error

    return over_batch


def prepare_each(
    video_ids: list[str], prepare: Callable[[str], T]
) -> tuple[dict[str, T], list[tuple[str, Exception]]]:
    """`prepare` each video of a batch stage: what worked, by video, and what did not."""
    ready: dict[str, T] = {}
    errors: list[tuple[str, Exception]] = []
    for video_id in video_ids:
        try:
            ready[video_id] = prepare(video_id)
        except Exception as error:  # judged per video by the caller
            errors.append((video_id, error))
    return ready, errors


@dataclass
class Handoff:
    """What a stage hands the next: the videos still going, and those that failed and why."""

    videos: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    # Of the failed, those an outage failed (a transient fault that outlived the step's retries).
    outages: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(
            {"videos": self.videos, "failed": self.failed, "outages": self.outages}
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Handoff:
        loaded = json.loads(data)
        return cls(
            videos=list(loaded["videos"]),
            failed=dict(loaded["failed"]),
            outages=list(loaded.get("outages", [])),
        )


class HandoffIOManager(dg.ConfigurableIOManager):
    """Keeps a stage's Handoff in the object store, under the run, so a re-execution from a
    failed step (on any machine) picks up the batch where it stopped."""

    objects: ObjectStoreResource

    def handle_output(self, context: dg.OutputContext, obj: Handoff) -> None:
        key = run_handoff_key(context.run_id, context.step_key)
        self.objects.store().put_bytes(key, obj.to_json(), "application/json")

    def load_input(self, context: dg.InputContext) -> Handoff:
        upstream = context.upstream_output
        assert upstream is not None
        key = run_handoff_key(upstream.run_id, upstream.step_key)
        return Handoff.from_json(self.objects.store().get_bytes(key))


def check_spec(check: Check) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        check.name,
        asset=check.asset,
        blocking=check.blocking,
        description=check.description,
        partitions_def=videos_partitions,
    )


def check_output_name(check: Check) -> str:
    return check_spec(check).get_python_identifier()


def _stores(context: dg.OpExecutionContext) -> Stores:
    resources = context.resources
    return Stores(
        catalog=resources.catalog.catalog(),
        objects=resources.objects.store(),
        vectors=resources.vectors.store(),
    )


def _materialized_in_run(context: dg.OpExecutionContext, key: dg.AssetKey) -> set[str]:
    """Videos this run already materialized for `key` (an earlier attempt of this step)."""
    records = context.instance.get_records_for_run(
        context.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    return {
        record.event_log_entry.dagster_event.partition
        for record in records
        if record.event_log_entry.dagster_event
        and record.event_log_entry.dagster_event.asset_key == key
    }


def _target_data(record):
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def run_stage(
    context: dg.OpExecutionContext,
    stage: Stage,
    handoff: Handoff | None,
    max_retries: int,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output]:
    """Run one stage over the run's videos; see the module docstring for what it yields."""
    incoming = handoff or Handoff(videos=list(context.partition_keys))
    failed = dict(incoming.failed)
    outages = list(incoming.outages)
    stores = _stores(context)
    stage_context = StageContext(
        stores=stores,
        pipeline=context.resources.pipeline,
        log=context.log,
        clip=getattr(context.resources, "clip", None),
    )
    checks = [
        check
        for check in stage.checks
        if dg.AssetCheckKey(stage.key, check.name) in context.selected_asset_check_keys
    ]
    last_attempt = context.retry_number >= max_retries
    if handoff is None and context.retry_number == 0 and ATTEMPT_TAG in context.run.tags:
        # a re-run after an outage: start once the stores answer again (or the wait is over)
        wait_for_stores(stores, stage_context.pipeline.outage_wait_s, context.log.info)

    keep_on_failure = context.run.tags.get(MODE_TAG) == REEMBED_MODE

    def give_up(video_id: str, reason: str) -> None:
        failed[video_id] = f"{stage.asset}: {reason}"
        context.log.error(f"{video_id} failed in {stage.asset}: {reason}")
        if keep_on_failure:
            return
        with contextlib.suppress(UnknownVideoError):  # a partition with no catalog row
            fail_video(video_id, stores, failed[video_id])

    going = [v for v in incoming.videos if v not in failed]
    done_before: set[str] = set()
    if context.retry_number > 0:  # an earlier attempt of this step already did some videos
        done_before = _materialized_in_run(context, stage.key)
        if not keep_on_failure:
            with stores.catalog.session() as session:
                rows = videos_by_id(session, going)
            for video_id in going:
                row = rows.get(video_id)
                if row is not None and row.state is VideoState.FAILED:
                    failed[video_id] = row.error_text or f"{stage.asset}: failed"
    going = [v for v in going if v not in failed]
    transient: dict[str, str] = {}

    if stage.key in context.selected_asset_keys:
        todo = [v for v in going if v not in done_before]
        for video_id, outcome in stage.work(stage_context, todo):
            if isinstance(outcome, Exception):
                if is_transient(outcome) and not last_attempt:
                    transient[video_id] = describe(outcome)
                    continue
                if isinstance(outcome, (InvalidVideoError, UnknownVideoError)):
                    reason = str(outcome)
                elif is_transient(outcome):
                    reason = f"{describe(outcome)} (still failing after {max_retries} retries)"
                    outages.append(video_id)
                else:
                    reason = describe(outcome)
                give_up(video_id, reason)
                continue
            yield dg.AssetMaterialization(
                asset_key=stage.key, partition=video_id, metadata=outcome.metadata
            )
            yield from _evaluate(context, stage, checks, video_id, stage_context, give_up)
    elif checks:  # only the checks were asked for: evaluate the current outputs
        for video_id in going:
            yield from _evaluate(context, stage, checks, video_id, stage_context, give_up)

    if transient:
        summary = "; ".join(f"{v}: {reason}" for v, reason in transient.items())
        raise RuntimeError(
            f"{stage.asset}: {len(transient)} video(s) hit a transient fault, retrying the step "
            f"(attempt {context.retry_number + 1} of {max_retries + 1}): {summary}"
        )
    still_going = [v for v in incoming.videos if v not in failed]
    if HANDOFF in context.selected_output_names:
        yield dg.Output(Handoff(videos=still_going, failed=failed, outages=outages), HANDOFF)
    elif not failed:  # the run is done with its handoffs
        stores.objects.delete_prefix(run_prefix(context.run_id))
    else:
        lines = "\n".join(f"- {video_id}: {reason}" for video_id, reason in failed.items())
        raise dg.Failure(
            description=f"{len(failed)} of {len(still_going) + len(failed)} videos failed; "
            f"the other {len(still_going)} {'is' if len(still_going) == 1 else 'are'} done."
            f"\n{lines}",
            metadata={
                "failed_videos": dg.MetadataValue.json(failed),
                OUTAGE_VIDEOS: dg.MetadataValue.json(outages),  # each is in `failed` too
            },
            allow_retries=False,
        )


def _evaluate(
    context: dg.OpExecutionContext,
    stage: Stage,
    checks: list[Check],
    video_id: str,
    stage_context: StageContext,
    give_up: Callable[[str, str], None],
) -> Iterator[dg.AssetCheckEvaluation]:
    """Evaluate the stage's checks on one video; a failed blocking check fails the video."""
    if not checks:
        return
    target = None
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=stage.key, asset_partitions=[video_id]), limit=1
    ).records
    if records:
        target = _target_data(records[0])
    for check in checks:
        started = time.perf_counter()
        try:
            outcome = check.evaluate(video_id, stage_context.stores, stage_context.sampling)
        except Exception as error:
            if is_transient(error):
                raise
            outcome = CheckOutcome([f"the check could not run: {describe(error)}"])
        stops_video = check.blocking and not outcome.passed
        yield dg.AssetCheckEvaluation(
            asset_key=stage.key,
            check_name=check.name,
            passed=outcome.passed,
            metadata={
                **outcome.metadata,
                "problems": len(outcome.problems),
                "seconds": round(time.perf_counter() - started, 4),
                "stopped_this_video": stops_video,
            },
            description=outcome.description,
            # The spec is blocking; the block is per video and ours (the video leaves the
            # handoff below). A blocking failed event would make Dagster fail the whole step,
            # and with it every other video of the batch.
            blocking=False,
            partition=video_id,
            target_materialization_data=target,
        )
        if stops_video:
            give_up(video_id, f"check {check.name} failed: {outcome.description}")
            return


def stage_op(stage: Stage, first: bool, retry_policy: dg.RetryPolicy) -> dg.OpDefinition:
    """The op that runs `stage`: its asset and check outputs are never returned (the op logs
    per-video events instead); its handoff output feeds the next stage."""
    outs = {
        HANDOFF: dg.Out(Handoff, io_manager_key="handoff_io_manager", is_required=False),
        stage.asset: dg.Out(is_required=False),
        **{check_output_name(c): dg.Out(is_required=False) for c in stage.checks},
    }
    ins = {} if first else {HANDOFF: dg.In(Handoff)}
    resources = set(stage.resources) | ({"clip"} if stage.asset == "embeddings" else set())
    max_retries = retry_policy.max_retries

    settings = {
        "name": stage.asset,
        "ins": ins,
        "out": outs,
        "required_resource_keys": resources,
        "pool": stage.pool,
        "retry_policy": retry_policy,
        "description": stage.description,
    }
    if first:

        @dg.op(**settings)
        def first_stage(context):
            yield from run_stage(context, stage, None, max_retries)

        return first_stage

    @dg.op(**settings)
    def next_stage(context, handoff):
        yield from run_stage(context, stage, handoff, max_retries)

    return next_stage


def build_chain(
    stages: list[Stage], retry_policy: dg.RetryPolicy, batch_size: int
) -> dg.AssetsDefinition:
    """The five assets as one graph-backed definition: a run may select any of them (and any
    check); the stages it did not select pass the batch through."""
    ops = [stage_op(stage, number == 0, retry_policy) for number, stage in enumerate(stages)]
    outputs = {stage.asset: dg.GraphOut() for stage in stages}
    outputs |= {check_output_name(c): dg.GraphOut() for stage in stages for c in stage.checks}

    @dg.graph(name="video_chain", out=outputs)
    def video_chain():
        results: dict[str, object] = {}
        handoff = None
        for stage, op in zip(stages, ops, strict=True):
            produced = op() if handoff is None else op(handoff)
            handoff = produced[0] if isinstance(produced, tuple) else produced
            values = dict(zip(op.outs, produced, strict=True))  # type: ignore[arg-type]
            results[stage.asset] = values[stage.asset]
            for check in stage.checks:
                results[check_output_name(check)] = values[check_output_name(check)]
        return results

    return dg.AssetsDefinition.from_graph(
        video_chain,
        partitions_def=videos_partitions,
        can_subset=True,
        internal_asset_deps={
            stage.asset: ({stages[n - 1].key} if n else set()) for n, stage in enumerate(stages)
        },
        group_names_by_output_name={stage.asset: stage.group for stage in stages},
        descriptions_by_output_name={stage.asset: stage.description for stage in stages},
        tags_by_output_name={
            stage.asset: {f"dagster/kind/{kind}": "" for kind in stage.kinds} for stage in stages
        },
        backfill_policy=dg.BackfillPolicy.multi_run(batch_size),
        check_specs=[check_spec(check) for stage in stages for check in stage.checks],
    )
