"""ClipResource: the open_clip model of a run, checked before any video is touched."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.clip.worker import ClipWorker, shared


class ClipResource(dg.ConfigurableResource):
    """open_clip model and weights, served by a child process for the length of the run.

    Opening the resource (at the start of a run) starts the child and waits for its verdict on
    the weights, so a run with weights that cannot be had fails at once, naming
    HEIMDEX_CLIP_PRETRAINED, before any video is touched. The child then imports torch and
    open_clip beside the media steps; the model itself is loaded by the embeddings step (inside
    its `clip` pool slot) and dropped when that step ends.
    """

    model: str
    pretrained: str
    _worker: ClipWorker | None = PrivateAttr(default=None)
    _owned: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # A worker this process already runs for the same model (`heimdex index` starts one
        # first thing) is used as is; otherwise the run starts its own.
        self._worker = shared(self.model, self.pretrained)
        self._owned = self._worker is None
        if self._worker is None:
            self._worker = ClipWorker(self.model, self.pretrained)
        try:
            self._worker.ready()
        except Exception:
            self.teardown_after_execution(context)
            raise

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._worker is not None and self._owned:
            self._worker.close()

    def encoder(self) -> ClipWorker:
        if self._worker is None:
            self.setup_for_execution(dg.build_init_resource_context())
        assert self._worker is not None
        return self._worker
