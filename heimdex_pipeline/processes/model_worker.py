"""The client side of a model held in a child process: requests and answers over a pipe, the
child's first message its verdict on the model (can it be had?), `release` to drop the model
and keep the process with its imports, `stop` to end it. `clip/worker.py` and
`speech/worker.py` are the two kinds; each child's `_serve` loop is its own."""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable


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
