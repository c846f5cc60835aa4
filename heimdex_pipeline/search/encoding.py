"""Query embeddings for a server many people search at once: concurrent queries are encoded
together in one forward pass, and repeated ones come from a cache.

One thread per model owns the encoder (one forward pass at a time: no oversubscription of the
cores). A query joins the queue; the thread takes every query waiting, up to `max_batch`, after
a short window (`window_s`: a lone query waits that long at most), and encodes the texts in one
pass and the images in another. Under load the queue fills while a pass runs, so the next pass
takes them all: throughput grows with load instead of each query waiting for the one before.
A text query's vector is kept (least recently used out, per model id) under its text with
whitespace collapsed: a repeated or paged query skips the encoder.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

MAX_BATCH = 32
WINDOW_S = 0.002
CACHE_SIZE = 4096


@dataclass(frozen=True)
class Encoded:
    """A query's vector and what it cost."""

    vector: np.ndarray
    cached: bool = False
    batch_size: int = 0  # queries that shared its forward pass (0 from the cache)
    queued_ms: float = 0.0  # waiting for its pass
    encode_ms: float = 0.0  # the pass itself

    def timing(self) -> dict[str, object]:
        return {
            "cached": self.cached,
            "batch_size": self.batch_size,
            "queued_ms": round(self.queued_ms, 2),
            "encode_ms": round(self.encode_ms, 2),
        }


@dataclass
class _Job:
    kind: str  # "text" | "image"
    payload: object
    queued_at: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    result: Encoded | None = None
    error: BaseException | None = None


def cache_key(text: str) -> str:
    return " ".join(text.split())


class QueryEncoder:
    """Texts and images to unit vectors with one model, batched and cached (thread-safe)."""

    def __init__(
        self,
        encoder,
        max_batch: int = MAX_BATCH,
        window_s: float = WINDOW_S,
        cache_size: int = CACHE_SIZE,
    ):
        self.encoder = encoder
        self.max_batch, self.window_s, self.cache_size = max_batch, window_s, cache_size
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="query-encoder", daemon=True)
        self._thread.start()

    def text(self, text: str) -> Encoded:
        key = cache_key(text)
        with self._cache_lock:
            vector = self._cache.get(key)
            if vector is not None:
                self._cache.move_to_end(key)
                return Encoded(vector, cached=True)
        encoded = self._submit("text", text)
        with self._cache_lock:
            self._cache[key] = encoded.vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return encoded

    def image(self, picture: Image.Image) -> Encoded:
        return self._submit("image", picture)

    def _submit(self, kind: str, payload: object) -> Encoded:
        job = _Job(kind, payload)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _take(self) -> list[_Job]:
        """The next batch: the first query waiting, and whoever joins within the window."""
        batch = [self._queue.get()]
        deadline = time.perf_counter() + self.window_s
        while len(batch) < self.max_batch:
            left = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            batch.append(job)
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._take()
            for kind in ("text", "image"):
                jobs = [job for job in batch if job.kind == kind]
                if jobs:
                    self._encode(kind, jobs)

    def _encode(self, kind: str, jobs: Sequence[_Job]) -> None:
        started = time.perf_counter()
        try:
            payloads = [job.payload for job in jobs]
            if kind == "text":
                vectors = self.encoder.encode_texts(payloads)
            else:
                vectors = self.encoder.encode_images(payloads)
        except BaseException as error:  # each waiting query gets the error, the thread goes on
            for job in jobs:
                job.error = error
                job.done.set()
            return
        took = (time.perf_counter() - started) * 1000
        for job, vector in zip(jobs, vectors, strict=True):
            job.result = Encoded(
                np.asarray(vector, np.float32),
                batch_size=len(jobs),
                queued_ms=(started - job.queued_at) * 1000,
                encode_ms=took,
            )
            job.done.set()
