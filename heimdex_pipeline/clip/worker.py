"""CLIP in a child process for the runs: its imports (torch and open_clip take about 7 s here,
most of it holding the interpreter lock) run on the other core while the media steps work, and
the model itself is loaded only when the embeddings step asks for it (holding the `clip` pool
slot) and dropped when that step ends.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import numpy as np

from heimdex_pipeline.clip.model import ClipLoadError, ModelIdentity
from heimdex_pipeline.processes.model_worker import (
    ModelWorker,
    UnknownRequest,
    serve_requests,
)


def _serve(connection: Connection, model: str, pretrained: str) -> None:
    """The child: say whether the weights can be had, import open_clip (the slow part) while
    the parent works, then answer `identity`, `encode`, `release` and `stop` requests."""
    from heimdex_pipeline.clip.model import check_weights, load_clip

    try:
        check_weights(model, pretrained)
    except ClipLoadError as error:
        connection.send(("error", (True, str(error))))
        return
    connection.send(("ok", None))
    import open_clip  # noqa: F401 - before the first request, beside the parent's media work
    from PIL import Image

    def answer(encoder, request: str, payload):
        if request == "identity":
            return encoder.identity, encoder.device
        if request == "encode":
            images = [Image.open(io.BytesIO(data)).convert("RGB") for data in payload]
            return encoder.encode_images(images)
        raise UnknownRequest(request)

    serve_requests(connection, lambda: load_clip(model, pretrained), answer, ClipLoadError)


class ClipWorker(ModelWorker):
    """A client of one CLIP child process (model, pretrained)."""

    what = "CLIP"
    load_error = ClipLoadError

    def __init__(self, model: str, pretrained: str):
        super().__init__(_serve, (model, pretrained), "heimdex-clip")
        self._identity: tuple[ModelIdentity, str] | None = None

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            self._identity = self._ask("identity")
        return self._identity[0]

    @property
    def device(self) -> str:
        self.identity  # noqa: B018 - loads it
        assert self._identity is not None
        return self._identity[1]

    def encode_jpegs(self, images: list[bytes], batch_size: int = 96) -> np.ndarray:
        """One unit vector per encoded image, float32 (sent in chunks of `batch_size`)."""
        if not images:
            return np.zeros((0, self.identity.dim), np.float32)
        parts = [
            self._ask("encode", images[start : start + batch_size])
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(parts).astype(np.float32)

    def release(self) -> None:
        """Drop the model (the process stays, with its imports, for a later step)."""
        super().release()
        self._identity = None


_SHARED: dict[tuple[str, str], ClipWorker] = {}


def share(worker: ClipWorker, model: str, pretrained: str) -> None:
    """Offer a long-lived worker (started by `heimdex index` before anything else, so torch's
    import overlaps its own) to the runs of this process; its starter closes it."""
    _SHARED[(model, pretrained)] = worker


def shared(model: str, pretrained: str) -> ClipWorker | None:
    worker = _SHARED.get((model, pretrained))
    return worker if worker is not None and worker.alive else None


def unshare(model: str, pretrained: str) -> None:
    worker = _SHARED.pop((model, pretrained), None)
    if worker is not None:
        worker.close()


@contextmanager
def serving(model: str, pretrained: str) -> Iterator[ClipWorker]:
    """One worker for every run this process starts in the block, started now."""
    worker = ClipWorker(model, pretrained)
    share(worker, model, pretrained)
    try:
        yield worker
    finally:
        unshare(model, pretrained)
