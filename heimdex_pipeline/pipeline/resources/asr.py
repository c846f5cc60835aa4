"""AsrResource: the speech model of a run, loaded in its worker process before any video is
touched (unless HEIMDEX_ASR_MODEL is `off`)."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.speech.model import AsrModelSpec, resolve_asr_model
from heimdex_pipeline.speech.worker import AsrWorker


class AsrResource(dg.ConfigurableResource):
    """faster-whisper model and language, served by a child process for the length of the run.

    Opening the resource starts the child, which loads the model (about a second for tiny.en):
    weights that cannot be had fail the run at once, naming HEIMDEX_ASR_MODEL. The transcripts
    step uses it inside its `asr` pool slot and drops the model when it ends.
    """

    model: str = "tiny.en"
    language: str = ""  # empty: detect
    threads: int = 0  # CTranslate2's threads; 0: as many as it likes
    _spec: AsrModelSpec | None = PrivateAttr(default=None)
    _worker: AsrWorker | None = PrivateAttr(default=None)

    @property
    def off(self) -> bool:
        return self.model.strip().lower() == "off"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.off:
            return
        self._spec = resolve_asr_model(self.model)
        self._worker = AsrWorker(self._spec, self.language or None, self.threads)
        try:
            self._worker.ready()
        except Exception:
            self.teardown_after_execution(context)
            raise

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    @property
    def spec(self) -> AsrModelSpec:
        if self._spec is None:
            self._spec = resolve_asr_model(self.model)
        assert self._spec is not None
        return self._spec

    def worker(self) -> AsrWorker:
        """The run's worker; a new one if it died (a crash costs that video's transcript)."""
        if self._worker is None or not self._worker.alive:
            if self._worker is not None:
                self._worker.close()
            self._worker = AsrWorker(self.spec, self.language or None, self.threads)
        return self._worker
