"""Whisper in a child process for the runs: faster-whisper's imports and its compute stay out of
the run's process (a crash in the decoder or the model costs a transcript, never the run), and
the model is loaded once when the run starts, so weights that do not load stop the run before
any video is touched. The transcripts step (holding the `asr` pool slot) uses it; the model is
dropped when that step ends.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from multiprocessing.connection import Connection

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
    while True:
        try:
            request, payload = connection.recv()
        except EOFError:
            return
        try:
            if request == "stop":
                return
            if request == "release":
                model = None
                connection.send(("ok", None))
                continue
            if model is None:
                model = load_whisper(spec, threads)
            if request == "transcribe":
                connection.send(("ok", transcribe_file(model, payload, language)))
            else:
                connection.send(("error", (False, f"unknown request {request!r}")))
        except AsrLoadError as error:
            connection.send(("error", (True, str(error))))
        except Exception as error:
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            connection.send(("error", (False, detail)))


class AsrWorker:
    """A client of one Whisper child process."""

    def __init__(self, spec: AsrModelSpec, language: str | None, threads: int = 0):
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, spec, language, threads), name="heimdex-asr", daemon=True
        )
        self._process.start()
        child.close()
        self.spec = spec
        self._checked = False

    def ready(self) -> None:
        """Wait for the child to load the model: AsrLoadError, naming the variable, if not."""
        if not self._checked:
            self._answer()
            self._checked = True

    def _answer(self):
        try:
            status, answer = self._connection.recv()
        except (EOFError, OSError):
            code = self._process.exitcode
            raise RuntimeError(f"the speech worker process died (exit code {code})") from None
        if status == "error":
            is_load_error, message = answer
            raise (AsrLoadError if is_load_error else RuntimeError)(message)
        return answer

    def _ask(self, request: str, payload: object = None):
        self.ready()
        try:
            self._connection.send((request, payload))
        except OSError:
            code = self._process.exitcode
            raise RuntimeError(f"the speech worker process died (exit code {code})") from None
        return self._answer()

    def transcribe(self, path: str) -> Transcript:
        """The transcript of the audio of the file at `path` (readable by the child)."""
        return self._ask("transcribe", path)

    def release(self) -> None:
        """Drop the model (the process stays for a later step)."""
        if self._process.is_alive() and self._checked:
            self._ask("release")

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._connection.send(("stop", None))
            self._process.join(timeout=1.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._connection.close()
