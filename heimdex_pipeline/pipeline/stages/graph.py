"""The per-video stages as Dagster runs them: one graph-backed asset definition built from what
each stage declares it reads, many videos per run, and the truth about each one.

Each stage is an op; an op takes the handoffs of the stages it reads and hands its own to the
stages that read it, so a stage that reads `raw_videos` alone and one that reads `thumbnails`
drop in without touching this builder. Runs use the in-process executor: one process per run,
models loaded once, frames embedded in batches across videos. A run covers a range of the
`videos` partitions (a backfill chunk, a sensor tick's new videos, a `heimdex index` call).

Dagster would copy one result to every partition of a range, so no stage returns one. Each stage
logs one materialization per video it finished, with that video's metadata, and one evaluation
per video for each of its checks; a video that fails (bad input, a failed blocking check, a
transient fault that outlived its retries) is marked `failed` with the step and the reason, loses
what was made of it, and drops out of the batch while the others go on. A stage no selected stage
reads concludes its branch of the run: it fails the step, naming every failed video, if any did
(the UI then shows exactly those partitions failed and the others materialized); the last branch
to succeed removes the run's handoffs.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import dagster as dg

from heimdex_pipeline.catalog.models import VideoState
from heimdex_pipeline.catalog.videos import UnknownVideoError, VideoDeletedError, videos_by_id
from heimdex_pipeline.library.lifecycle import fail_video
from heimdex_pipeline.library.transient import describe, is_transient, wait_for_stores
from heimdex_pipeline.media.errors import InvalidVideoError
from heimdex_pipeline.pipeline.checks import Check, CheckOutcome
from heimdex_pipeline.pipeline.handoff import Handoff
from heimdex_pipeline.pipeline.partitions import videos as videos_partitions
from heimdex_pipeline.pipeline.resources import stores_from
from heimdex_pipeline.pipeline.runs import materialized_in_run
from heimdex_pipeline.pipeline.stages.base import Stage, StageContext
from heimdex_pipeline.pipeline.tags import (
    ATTEMPT_TAG,
    FAILED_VIDEOS,
    MODE_TAG,
    OUTAGE_VIDEOS,
    REEMBED_MODE,
)
from heimdex_pipeline.stores.keys import run_prefix

# partitions_def on a check spec is "preview" in Dagster 1.13, and needed: without it a check on
# a dynamically partitioned asset reads the wrong partition. Known, so not shown on every command.
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

HANDOFF = "handoff"


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


def _target_data(record):
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData,
    )

    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


@dataclass
class StageRun:
    """One stage's step in one run: which videos it takes on, its verdict on each, and what it
    hands on or concludes. `run_stage` drives it."""

    context: dg.OpExecutionContext
    stage: Stage
    incoming: Handoff
    max_retries: int
    branch_ends: frozenset[str]  # the stages that conclude a branch of this run
    work: StageContext = field(init=False)
    failed: dict[str, str] = field(init=False)
    outages: list[str] = field(init=False)
    transient: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        resources = self.context.resources
        self.failed = dict(self.incoming.failed)
        self.outages = list(self.incoming.outages)
        self.work = StageContext(
            stores=stores_from(resources.catalog, resources.objects, resources.vectors),
            pipeline=self.context.resources.pipeline,
            log=self.context.log,
            clip=getattr(self.context.resources, "clip", None)
            if "clip" in self.stage.resources
            else None,
            asr=getattr(self.context.resources, "asr", None)
            if "asr" in self.stage.resources
            else None,
            faces=getattr(self.context.resources, "faces", None)
            if "faces" in self.stage.resources
            else None,
        )

    @property
    def keep_on_failure(self) -> bool:
        """A re-embedding leaves a video as it was when its new embedding fails."""
        return self.context.run.tags.get(MODE_TAG) == REEMBED_MODE

    @property
    def last_attempt(self) -> bool:
        return self.context.retry_number >= self.max_retries

    def checks(self) -> list[Check]:
        selected = self.context.selected_asset_check_keys
        return [
            c for c in self.stage.checks if dg.AssetCheckKey(self.stage.key, c.name) in selected
        ]

    def resume(self, first_step: bool) -> list[str]:
        """The videos this attempt still has to do: after an outage, once the stores answer; on a
        retry, without those an earlier attempt finished or failed."""
        context = self.context
        if first_step and context.retry_number == 0 and ATTEMPT_TAG in context.run.tags:
            wait_for_stores(self.work.stores, self.work.pipeline.outage_wait_s, context.log.info)
        going = [v for v in self.incoming.videos if v not in self.failed]
        with self.work.stores.catalog.session() as session:
            rows = videos_by_id(session, going)
        for video_id in going:  # deleted since the run began: it stays deleted, nothing made
            row = rows.get(video_id)
            if row is not None and row.state is VideoState.DELETED:
                self.give_up(video_id, str(VideoDeletedError(video_id)))
        if context.retry_number > 0 and not self.keep_on_failure:
            for video_id in going:  # an earlier attempt of this step failed it
                row = rows.get(video_id)
                if row is not None and row.state is VideoState.FAILED:
                    self.failed[video_id] = row.error_text or f"{self.stage.asset}: failed"
        done_before = set()
        if context.retry_number > 0:
            done_before = materialized_in_run(context.instance, context.run_id, self.stage.key)
        return [v for v in going if v not in self.failed and v not in done_before]

    def give_up(self, video_id: str, reason: str) -> None:
        """Fail one video of the batch: its reason, its state and what was made of it."""
        self.failed[video_id] = f"{self.stage.asset}: {reason}"
        self.context.log.error(f"{video_id} failed in {self.stage.asset}: {reason}")
        if not self.stage.fails_video:  # the video keeps what the other stages made of it
            if self.stage.on_failure is not None:
                with contextlib.suppress(Exception):  # best effort: the step fails anyway
                    self.stage.on_failure(video_id, self.work.stores, reason)
            return
        if self.keep_on_failure:
            return
        with contextlib.suppress(UnknownVideoError):  # a partition with no catalog row
            fail_video(video_id, self.work.stores, self.failed[video_id])

    def judge(self, video_id: str, error: Exception) -> None:
        """A video's work raised: retry the step for a transient fault, else fail the video."""
        if is_transient(error) and not self.last_attempt:
            self.transient[video_id] = describe(error)
            return
        if isinstance(error, (InvalidVideoError, UnknownVideoError, VideoDeletedError)):
            reason = str(error)
        elif is_transient(error):
            reason = f"{describe(error)} (still failing after {self.max_retries} retries)"
            if self.stage.fails_video:
                self.outages.append(video_id)
        else:
            reason = describe(error)
        self.give_up(video_id, reason)

    def evaluate(self, checks: list[Check], video_id: str) -> Iterator[dg.AssetCheckEvaluation]:
        """Evaluate the stage's checks on one video; a failed blocking check fails the video."""
        if not checks:
            return
        target = None
        records = self.context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=self.stage.key, asset_partitions=[video_id]), limit=1
        ).records
        if records:
            target = _target_data(records[0])
        for check in checks:
            started = time.perf_counter()
            try:
                outcome = check.evaluate(video_id, self.work.stores, self.work.sampling)
            except Exception as error:
                if is_transient(error):
                    raise
                outcome = CheckOutcome([f"the check could not run: {describe(error)}"])
            stops_video = check.blocking and not outcome.passed
            yield dg.AssetCheckEvaluation(
                asset_key=self.stage.key,
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
                # handoff). A blocking failed event would make Dagster fail the whole step,
                # and with it every other video of the batch.
                blocking=False,
                partition=video_id,
                target_materialization_data=target,
            )
            if stops_video:
                self.give_up(video_id, f"check {check.name} failed: {outcome.description}")
                return

    def hand_off_or_conclude(self) -> Iterator[dg.Output]:
        """Retry the step for transient faults; else hand the batch on, or, where no selected
        stage reads this one, conclude this branch of the run."""
        if self.transient:
            summary = "; ".join(f"{v}: {reason}" for v, reason in self.transient.items())
            raise RuntimeError(
                f"{self.stage.asset}: {len(self.transient)} video(s) hit a transient fault, "
                f"retrying the step (attempt {self.context.retry_number + 1} of "
                f"{self.max_retries + 1}): {summary}"
            )
        still_going = [v for v in self.incoming.videos if v not in self.failed]
        if HANDOFF in self.context.selected_output_names:
            yield dg.Output(
                Handoff(videos=still_going, failed=self.failed, outages=self.outages), HANDOFF
            )
            return
        if self.failed:
            lines = "\n".join(f"- {video_id}: {reason}" for video_id, reason in self.failed.items())
            going = len(still_going)
            raise dg.Failure(
                description=f"{len(self.failed)} of {going + len(self.failed)} videos failed; "
                f"the other {going} {'is' if going == 1 else 'are'} done.\n{lines}",
                metadata={
                    FAILED_VIDEOS: dg.MetadataValue.json(self.failed),
                    OUTAGE_VIDEOS: dg.MetadataValue.json(self.outages),  # each is in `failed`
                },
                allow_retries=False,
            )
        if self._other_branches_succeeded():  # the run is done with its handoffs
            self.work.stores.objects.delete_prefix(run_prefix(self.context.run_id))

    def _other_branches_succeeded(self) -> bool:
        others = self.branch_ends - {self.stage.asset}
        if not others:
            return True
        records = self.context.instance.get_records_for_run(
            self.context.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        ).records
        # step keys of a graph-backed asset's ops are `video_chain.<stage>`
        succeeded = {r.event_log_entry.dagster_event.step_key.split(".")[-1] for r in records}
        return others <= succeeded


def run_stage(
    context: dg.OpExecutionContext,
    stage: Stage,
    handoffs: Sequence[Handoff],
    max_retries: int,
    branch_ends: Callable[[dg.OpExecutionContext], frozenset[str]],
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output]:
    """Run one stage over the run's videos; see the module docstring for what it yields."""
    incoming = Handoff.merge(handoffs) if handoffs else Handoff(list(context.partition_keys))
    step = StageRun(context, stage, incoming, max_retries, branch_ends(context))
    todo = step.resume(first_step=not handoffs)
    checks = step.checks()
    if stage.key in context.selected_asset_keys:
        for video_id, outcome in stage.work(step.work, todo):
            if isinstance(outcome, Exception):
                step.judge(video_id, outcome)
                continue
            yield dg.AssetMaterialization(
                asset_key=stage.key, partition=video_id, metadata=outcome.metadata
            )
            yield from step.evaluate(checks, video_id)
    elif checks:  # only the checks were asked for: evaluate the current outputs
        for video_id in todo:
            yield from step.evaluate(checks, video_id)
    yield from step.hand_off_or_conclude()


def in_order(stages: Sequence[Stage]) -> list[Stage]:
    """The stages with each one after every stage it reads; a stage reading an unknown stage,
    or a cycle, is a programming error named here."""
    by_name = {stage.asset: stage for stage in stages}
    for stage in stages:
        unknown = [name for name in stage.reads if name not in by_name]
        if unknown:
            raise ValueError(f"stage {stage.asset} reads unknown stages {unknown}")
    ordered: list[Stage] = []
    placed: set[str] = set()
    while len(ordered) < len(stages):
        ready = [s for s in stages if s.asset not in placed and set(s.reads) <= placed]
        if not ready:
            raise ValueError(f"the stages {sorted(set(by_name) - placed)} read each other")
        ordered += ready
        placed |= {s.asset for s in ready}
    return ordered


def readers_of(stages: Sequence[Stage]) -> dict[str, list[str]]:
    """For each stage, the stages that read it."""
    readers: dict[str, list[str]] = {stage.asset: [] for stage in stages}
    for stage in stages:
        for name in stage.reads:
            readers[name].append(stage.asset)
    return readers


def branch_ends_of(stages: Sequence[Stage]) -> Callable[[dg.OpExecutionContext], frozenset[str]]:
    """Which steps of a run conclude a branch: the selected stages no selected stage reads."""
    readers = readers_of(stages)

    def ends(context: dg.OpExecutionContext) -> frozenset[str]:
        selected = {key.path[-1] for key in context.selected_asset_keys}
        needed = set(selected)
        for stage in reversed(in_order(stages)):  # a selected stage's upstream stages run too
            if stage.asset in needed:
                needed |= set(stage.reads)
        return frozenset(name for name in needed if not any(r in needed for r in readers[name]))

    return ends


def stage_op(
    stage: Stage,
    retry_policy: dg.RetryPolicy,
    branch_ends: Callable[[dg.OpExecutionContext], frozenset[str]],
) -> dg.OpDefinition:
    """The op that runs `stage`: its asset and check outputs are never returned (the op logs
    per-video events instead); its handoff output feeds the stages that read it."""
    outs = {
        HANDOFF: dg.Out(Handoff, io_manager_key="handoff_io_manager", is_required=False),
        stage.asset: dg.Out(is_required=False),
        **{check_output_name(c): dg.Out(is_required=False) for c in stage.checks},
    }
    ins = {f"{HANDOFF}_{name}": dg.In(Handoff) for name in stage.reads}
    max_retries = retry_policy.max_retries

    @dg.op(
        name=stage.asset,
        ins=ins,
        out=outs,
        required_resource_keys=set(stage.resources),
        pool=stage.pool,
        retry_policy=retry_policy,
        description=stage.description,
    )
    def stage_step(context, **handoffs: Handoff):
        ordered = [handoffs[f"{HANDOFF}_{name}"] for name in stage.reads]
        yield from run_stage(context, stage, ordered, max_retries, branch_ends)

    return stage_step


def build_chain(
    stages: Sequence[Stage], retry_policy: dg.RetryPolicy, batch_size: int
) -> dg.AssetsDefinition:
    """Every stage as one graph-backed definition: a run may select any of them (and any
    check); the stages it did not select but needs pass the batch through."""
    ordered = in_order(stages)
    ends = branch_ends_of(ordered)
    ops = {stage.asset: stage_op(stage, retry_policy, ends) for stage in ordered}
    outputs = {stage.asset: dg.GraphOut() for stage in ordered}
    outputs |= {check_output_name(c): dg.GraphOut() for stage in ordered for c in stage.checks}

    @dg.graph(name="video_chain", out=outputs)
    def video_chain():
        results: dict[str, object] = {}
        handoffs: dict[str, object] = {}
        for stage in ordered:
            op = ops[stage.asset]
            produced = op(**{f"{HANDOFF}_{name}": handoffs[name] for name in stage.reads})
            values = dict(zip(op.outs, produced, strict=True))  # type: ignore[arg-type]
            handoffs[stage.asset] = values[HANDOFF]
            results[stage.asset] = values[stage.asset]
            for check in stage.checks:
                results[check_output_name(check)] = values[check_output_name(check)]
        return results

    return dg.AssetsDefinition.from_graph(
        video_chain,
        partitions_def=videos_partitions,
        can_subset=True,
        internal_asset_deps={
            stage.asset: {dg.AssetKey(name) for name in stage.reads} for stage in ordered
        },
        group_names_by_output_name={stage.asset: stage.group for stage in ordered},
        descriptions_by_output_name={stage.asset: stage.description for stage in ordered},
        tags_by_output_name={
            stage.asset: {f"dagster/kind/{kind}": "" for kind in stage.kinds} for stage in ordered
        },
        backfill_policy=dg.BackfillPolicy.multi_run(batch_size),
        check_specs=[check_spec(check) for stage in ordered for check in stage.checks],
    )
