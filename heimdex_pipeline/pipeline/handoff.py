"""What one stage of a run hands the stages that read it: the videos still going, and those
that failed and why, kept in the object store under the run so that a re-execution of a failed
step, on any machine, picks the batch up where it stopped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from heimdex_pipeline.pipeline.resources import ObjectStoreResource
from heimdex_pipeline.stores.keys import run_handoff_key


@dataclass
class Handoff:
    """The videos still going, and those that failed and why."""

    videos: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    # Of the failed, those an outage failed (a transient fault that outlived the step's retries).
    outages: list[str] = field(default_factory=list)

    @classmethod
    def merge(cls, handoffs: Sequence[Handoff]) -> Handoff:
        """What a stage that reads several stages receives: the videos every one of them
        passed on (in the first one's order), and every failure of any of them."""
        failed: dict[str, str] = {}
        outages: list[str] = []
        for handoff in handoffs:
            failed |= {v: r for v, r in handoff.failed.items() if v not in failed}
            outages += [v for v in handoff.outages if v not in outages]
        going = [v for v in handoffs[0].videos if all(v in h.videos for h in handoffs[1:])]
        return cls(videos=[v for v in going if v not in failed], failed=failed, outages=outages)

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
    """Keeps a stage's Handoff in the object store, under the run and the step."""

    objects: ObjectStoreResource

    def handle_output(self, context: dg.OutputContext, obj: Handoff) -> None:
        key = run_handoff_key(context.run_id, context.step_key)
        self.objects.store().put_bytes(key, obj.to_json(), "application/json")

    def load_input(self, context: dg.InputContext) -> Handoff:
        upstream = context.upstream_output
        assert upstream is not None
        key = run_handoff_key(upstream.run_id, upstream.step_key)
        return Handoff.from_json(self.objects.store().get_bytes(key))
