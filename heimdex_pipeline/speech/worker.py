"""Whisper in a child process for the runs: faster-whisper's imports and its compute stay out of
the run's process (a crash in the decoder or the model costs a transcript, never the run), and
the model is loaded once when the run starts, so weights that do not load stop the run before
any video is touched. The transcripts step (holding the `asr` pool slot) uses it; the model is
dropped when that step ends.
"""

from __future__ import annotations

from multiprocessing.connection import Connection

from heimdex_pipeline.processes.model_worker import (
    ModelWorker,
    UnknownRequest,
    serve_requests,
)
from heimdex_pipeline.speech.model import AsrLoadError, AsrModelSpec
from heimdex_pipeline.speech.transcript import Transcript


def _serve(connection: Connection, spec: AsrModelSpec, language: str | None, threads: int):
    from heimdex_pipeline.speech.model import load_whisper, transcribe_file

    model = None
    try:
        model = load_whisper(spec, threads)
    except AsrLoadError as error:
        connection.send(("error", (True, str(error))))
        return
    connection.send(("ok", None))

    def answer(loaded, request: str, payload):
        if request == "transcribe":
            return transcribe_file(loaded, payload, language)
        raise UnknownRequest(request)

    serve_requests(
        connection, lambda: load_whisper(spec, threads), answer, AsrLoadError, model=model
    )


class AsrWorker(ModelWorker):
    """A client of one Whisper child process."""

    what = "speech"
    load_error = AsrLoadError
    stop_wait_s = 1.0

    def __init__(self, spec: AsrModelSpec, language: str | None, threads: int = 0):
        super().__init__(_serve, (spec, language, threads), "heimdex-asr")
        self.spec = spec

    def transcribe(self, path: str) -> Transcript:
        """The transcript of the audio of the file at `path` (readable by the child)."""
        return self._ask("transcribe", path)
