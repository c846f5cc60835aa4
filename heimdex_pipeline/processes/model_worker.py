"""The client side of a model held in a child process: requests and answers over a pipe, the
child's first message its verdict on the model (can it be had?), `release` to drop the model
and keep the process with its imports, `stop` to end it. `clip/worker.py` and
`speech/worker.py` are the two kinds; each child's `_serve` loop is its own."""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection


class ModelWorker:
    """A client of one child process serving a model."""

    what = "model"  # how messages name the worker ("the CLIP worker process died")
    load_error: type[Exception] = RuntimeError  # raised when the child says the model cannot load
    stop_wait_s = 0.5

    def __init__(self, serve: Callable, args: tuple, process_name: str):
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=serve, args=(child, *args), name=process_name, daemon=True
        )
        self._process.start()
        child.close()
        self._checked = False

    def ready(self) -> None:
        """Wait for the child's verdict on the model: `load_error`, naming the setting, when it
        cannot be had."""
        if not self._checked:
            self._answer()
            self._checked = True

    def _died(self) -> RuntimeError:
        code = self._process.exitcode
        return RuntimeError(f"the {self.what} worker process died (exit code {code})")

    def _answer(self):
        try:
            status, answer = self._connection.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status == "error":
            is_load_error, message = answer
            raise (self.load_error if is_load_error else RuntimeError)(message)
        return answer

    def _ask(self, request: str, payload: object = None):
        self.ready()
        try:
            self._connection.send((request, payload))
        except OSError:
            raise self._died() from None
        return self._answer()

    def release(self) -> None:
        """Drop the model (the process stays, with its imports, for a later step)."""
        if self._process.is_alive() and self._checked:
            self._ask("release")

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        """Stop the child (it holds nothing to save: killed if it does not stop soon)."""
        if self._process.is_alive():
            with contextlib.suppress(OSError, BrokenPipeError):
                self._connection.send(("stop", None))
            self._process.join(timeout=self.stop_wait_s)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._connection.close()


class UnknownRequest(Exception):
    """Raised by a child's `answer` for a request it does not know."""


def serve_requests(
    connection: Connection,
    load: Callable[[], object],
    answer: Callable[[object, str, object], object],
    load_error: type[Exception],
    model: object = None,
) -> None:
    """The child's loop: `stop` ends it, `release` drops the model, any other request loads the
    model if it is not loaded (`load`) and is answered by `answer(model, request, payload)`
    (UnknownRequest: one it does not know). Errors go back to the client, `load_error` marked."""
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
                model = load()
            connection.send(("ok", answer(model, request, payload)))
        except load_error as error:
            connection.send(("error", (True, str(error))))
        except UnknownRequest:
            connection.send(("error", (False, f"unknown request {request!r}")))
        except Exception as error:
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            connection.send(("error", (False, detail)))
