"""The fused shot detector: content, histogram and hash scores of the decode pass's small frames,
an adaptive (rolling) ratio, and checks that tell a cut from a flash, a fade of one shot, or
camera motion; gradual transitions (dissolves, wipes, fades between shots) found by comparing
frames further apart, their boundary put at the transition's middle.

Everything is computed from the analysis planes the decode pass already makes (about 128 px
wide, planar YUV): no colour conversion, no second decode. Cuts come out a few frames late
(the look-ahead the checks need); `finish()` flushes the last ones.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

# How far back each frame is compared (frames): 1 for cuts; 2-6 to see a flash or damaged frame
# end; the longer ones for gradual transitions (a window of 2 x half-width, centred on its middle).
LOOKBACK = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32)
HALF_WIDTHS = (4, 6, 8, 12, 16)
LATENCY = 50  # frames a decision waits for (3 x the largest half-width, a fade's recovery)


@dataclass(frozen=True)
class FusedThresholds:
    """The fused detector's thresholds, chosen on the tuning half of the generated corpus
    (`benchmarks/shot_corpus_eval.py`); see README, "Shot detection"."""

    cut_hash: float = 0.30  # hash distance of consecutive frames that alone makes a cut
    cut_hist: float = 0.25  # histogram distance of consecutive frames that alone makes a cut
    cut_content: float = 0.08  # mean |dY|,|dU|,|dV| / 255 that alone makes a cut
    adaptive: float = 2.0  # a score is "peaky" at this multiple of its neighbours' mean (+ floor)
    flash_back: float = 0.5  # the picture is "back" within 5 frames below this x the cut's scores
    gradual_hash: float = 0.30  # hash distance across a gradual transition
    gradual_hist: float = 0.25  # histogram distance across a gradual transition
    gradual_contrast: float = 2.0  # across the transition / within the same span before or after
    dip_hash: float = 0.25  # hash distance between the pictures before and after a fade to dark
    min_gap_s: float = 0.25  # no two boundaries closer than this

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


# Floors of "peaky" (content, histogram, hash): a score must stand this far above its neighbours.
PEAK_FLOORS = (0.015, 0.04, 0.12)
BLACK_LUMA, BLACK_STD = 24.0, 4.0  # darker and flatter than this: black, nothing to see
DARK_LUMA = 32.0  # a fade's dark part: below this the picture is not compared
BRIGHT_LUMA = 40.0  # before and after a dark dip, pictures this bright are compared
FLAT_STD = 5.0  # a picture this flat has no structure: its hash is noise
SHAKY_HASH = 0.15  # neighbours' mean hash step above which the camera is shaking


@dataclass
class _Frame:
    time_s: float
    luma: float
    black: bool
    flat: bool
    # distances to the frame k back, k in LOOKBACK: (content, histogram, hash); content is 0
    # beyond k = 1
    back: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    # a dark dip's boundary candidate: hash distance between the pictures before and after
    dip_hash: float | None = None


class _Signature:
    """What frames are compared by: planes for the content score, histograms, a 63-bit DCT hash
    (an int: distances are one XOR and a bit count)."""

    __slots__ = ("hash", "hist", "luma", "planes", "std")

    def __init__(self, yuv420p: np.ndarray):
        rows = yuv420p.shape[0] * 2 // 3
        width = yuv420p.shape[1]
        flat = yuv420p.reshape(-1)
        y = flat[: rows * width].reshape(rows, width)
        quarter = (rows // 2) * (width // 2)
        uv = flat[rows * width : rows * width + 2 * quarter]
        self.planes = (y[::2, ::2].astype(np.int16), uv.astype(np.int16))
        mean, std = cv2.meanStdDev(y)
        self.luma, self.std = float(mean[0, 0]), float(std[0, 0])
        u = uv[:quarter].reshape(1, -1)
        v = uv[quarter:].reshape(1, -1)
        self.hist = np.concatenate(
            [
                cv2.calcHist([y], [0], None, [32], [0, 256]).ravel() / y.size,
                cv2.calcHist([u], [0], None, [16], [0, 256]).ravel() / quarter,
                cv2.calcHist([v], [0], None, [16], [0, 256]).ravel() / quarter,
            ]
        )
        small = cv2.resize(y, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        low = cv2.dct(small)[:8, :8].ravel()[1:]
        bits = np.packbits(low > np.partition(low, 31)[31])  # above the median: 32 of 63 bits
        self.hash = int.from_bytes(bits.tobytes(), "big")

    def content(self, other: _Signature) -> float:
        """Mean |dY|, |dU|, |dV| / 255 (luma at half resolution, chroma as it is)."""
        luma = float(np.abs(self.planes[0] - other.planes[0]).mean())
        chroma = float(np.abs(self.planes[1] - other.planes[1]).mean())
        return (luma + 2 * chroma) / 3 / 255

    def hash_distance(self, other: _Signature) -> float:
        return (self.hash ^ other.hash).bit_count() / 63


class FusedDetector:
    """Feed frames in order with `push`; each call returns the boundaries decided so far."""

    def __init__(self, thresholds: FusedThresholds | None = None):
        self.t = thresholds or FusedThresholds()
        self._signatures: deque[_Signature] = deque(maxlen=max(LOOKBACK) + 1)
        self.frames: list[_Frame] = []  # kept for the whole video: a few hundred bytes each
        self._decided = 0  # frames [0, _decided) are decided
        self._last_cut_s = -1e9
        self._bright: _Signature | None = None  # the last bright picture
        self._dip: list[int] | None = None  # frames of the dark dip under way
        self._last_gradual: int | None = None
        self.cuts_s: list[float] = []

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]:
        signature = _Signature(yuv420p)
        black = signature.luma < BLACK_LUMA and signature.std < BLACK_STD
        frame = _Frame(time_s, signature.luma, black, signature.std < FLAT_STD)
        known = [k for k in LOOKBACK if k <= len(self._signatures)]
        if known:  # histogram distances to every frame looked back at, in one operation
            hists = np.stack([self._signatures[-k].hist for k in known])
            hist_d = np.abs(hists - signature.hist).sum(axis=1) / 6
            for k, hist in zip(known, hist_d.tolist(), strict=True):
                other = self._signatures[-k]
                content = signature.content(other) if k == 1 else 0.0
                frame.back[k] = (content, hist, signature.hash_distance(other))
        self.frames.append(frame)
        self._follow_dips(signature)
        self._signatures.append(signature)
        return self._decide(upto=len(self.frames) - LATENCY)

    def _follow_dips(self, signature: _Signature) -> None:
        """A fade to dark and back (a dip): once the picture is bright again, mark the dip's
        boundary frame (where it leaves its darkest) with how different
        the pictures before and after are. A video that starts dark has no picture before."""
        index = len(self.frames) - 1
        if signature.luma < DARK_LUMA:
            if self._dip is None:
                self._dip = []
            self._dip.append(index)
            return
        if signature.luma < BRIGHT_LUMA or self._dip is None:
            if signature.luma >= BRIGHT_LUMA:
                self._bright = signature
            return
        dip, self._dip = self._dip, None
        if dip and self._bright is not None:
            # The new shot starts as the picture leaves its darkest (black, a caption card, the
            # bottom of a fade): the frame after the last of the darkest frames.
            darkest = min(self.frames[i].luma for i in dip)
            last = max(i for i in dip if self.frames[i].luma <= darkest + 1.0)
            where = min(last + 1, index)
            self.frames[where].dip_hash = signature.hash_distance(self._bright)
        self._bright = signature

    def finish(self) -> list[float]:
        return self._decide(upto=len(self.frames))

    def may_start_shot(self) -> bool:
        """The last frame's step passes a cut's first test (`_is_cut` asks the same first)."""
        step = self.frames[-1].back.get(1) if self.frames else None
        return step is None or self._strong(step)

    def _strong(self, step: tuple[float, float, float]) -> bool:
        """A step large enough, in one score or another, to be a cut."""
        content, hist, hashd = step
        t = self.t
        return hashd >= t.cut_hash or hist >= t.cut_hist or content >= t.cut_content

    def decided_s(self) -> float:
        """Frames up to here are decided (a later cut cannot come before the next one)."""
        return (
            self.frames[self._decided].time_s - 1e-9
            if self._decided < len(self.frames)
            else math.inf
        )

    # decisions -------------------------------------------------------------------------------

    def _decide(self, upto: int) -> list[float]:
        found = []
        while self._decided < upto:
            i = self._decided
            self._decided += 1
            time_s = self._boundary_at(i)
            if time_s is not None and time_s - self._last_cut_s >= self.t.min_gap_s:
                self._last_cut_s = time_s
                self.cuts_s.append(time_s)
                found.append(time_s)
        return found

    def _boundary_at(self, i: int) -> float | None:
        if i == 0:
            return None
        if self._is_cut(i) or self._ends_dip_between_shots(i) or self._is_gradual_middle(i):
            return self.frames[i].time_s
        return None

    def _peaky(self, i: int) -> tuple[tuple[bool, bool, bool], float]:
        """Which of the three scores at frame i stand out from their neighbours', and the
        neighbours' mean hash distance (high: the camera shakes, the hash says little)."""
        neighbours = [
            self.frames[j].back[1]
            for j in range(max(1, i - 3), min(len(self.frames), i + 4))
            if j != i and 1 in self.frames[j].back
        ]
        here = self.frames[i].back[1]
        if not neighbours:
            return (True, True, True), 0.0
        means = [sum(s[n] for s in neighbours) / len(neighbours) for n in range(3)]
        peaky = tuple(here[n] >= self.t.adaptive * means[n] + PEAK_FLOORS[n] for n in range(3))
        return peaky, means[2]  # type: ignore[return-value]

    def _is_cut(self, i: int) -> bool:
        t = self.t
        if self.frames[i].black and self.frames[i - 1].black:
            return False
        content, hist, hashd = self.frames[i].back[1]
        if not self._strong((content, hist, hashd)):
            return False
        (peaky_content, peaky_hist, peaky_hash), hash_around = self._peaky(i)
        black_edge = self.frames[i].black or self.frames[i - 1].black
        flat_edge = self.frames[i].flat or self.frames[i - 1].flat  # no structure to hash
        shaky = hash_around >= SHAKY_HASH  # the hash changes every frame: it says little
        if black_edge and not (peaky_content and content >= t.cut_content / 2):
            return False  # a fade from or to black, not a cut
        if flat_edge and not peaky_content:
            return False  # a flat picture's histogram jumps bins on a small change of light
        structure = (
            peaky_hash and (peaky_hist or peaky_content) and (not shaky or hist >= t.cut_hist / 2)
        )
        only_structure = peaky_hash and not shaky and hashd >= t.cut_hash  # similar colours
        colours = peaky_hist and peaky_content and hist >= t.cut_hist / 2 and (shaky or flat_edge)
        if not (structure or only_structure or colours):
            return False  # fast motion (each step differs as much), a light, a counter, a jolt
        # A flash, damaged frames or frames of another shot spliced in: a picture of the last
        # three frames before comes back within five frames after.
        jump = hist + hashd
        for before in range(max(0, i - 3), i):
            for after in range(i, min(len(self.frames), i + 6)):
                found = self.frames[after].back.get(after - before)
                if (
                    after - before >= 2
                    and found is not None
                    and (found[1] + found[2] < t.flash_back * jump)
                ):
                    return False
        return True

    def _ends_dip_between_shots(self, i: int) -> bool:
        """A dip to dark whose pictures before and after differ: unless a cut led into it (the
        boundary was there), the new shot starts where the dark ends."""
        found = self.frames[i].dip_hash
        if found is None or found < self.t.dip_hash:
            return False
        start = i
        while start > 0 and self.frames[start - 1].luma < DARK_LUMA:
            start -= 1
        return not any(self._is_cut(j) for j in range(max(1, start - 1), i))

    def _across(self, a: int, b: int) -> float | None:
        """hist + hash between frames a and b (b - a in LOOKBACK), None when either is dark or
        flat (nothing to compare) or a dark dip lies between them (a fade: the dip's business)."""
        if a < 0 or b >= len(self.frames):
            return None
        if any(self.frames[j].luma < DARK_LUMA for j in range(a, b + 1)):
            return None
        if self.frames[a].flat or self.frames[b].flat:
            return None
        found = self.frames[b].back.get(b - a)
        return None if found is None else found[1] + found[2]

    def _middle_of_plateau(self, i: int, w: int, here: float) -> bool:
        """Windows of half-width w centred near i see the same transition; the one centred at
        the middle of the run that sees it best (within 10 %) is the transition's middle."""
        values = {j: self._across(j - w, j + w) for j in range(i - w, i + w + 1)}
        best = max(v for v in values.values() if v is not None)
        if here < best:
            near = [j for j, v in values.items() if v is not None and v >= 0.9 * best]
        else:
            near = [j for j, v in values.items() if v is not None and v >= 0.9 * here]
        run = [j for j in near if abs(j - i) <= w]
        return bool(run) and here >= 0.9 * best and i == sorted(run)[len(run) // 2]

    def _is_gradual_middle(self, i: int) -> bool:
        """A transition centred on frame i: the frames w before and w after differ as two shots
        do, much more than the same span before or after does (not camera motion), no single
        step near them is a cut, and the difference is largest centred here."""
        t = self.t
        for w in HALF_WIDTHS:
            a, b = i - w, i + w
            here = self._across(a, b)
            if here is None:
                continue
            _, hist, hashd = self.frames[b].back[2 * w]
            if hist < t.gradual_hist or hashd < t.gradual_hash:
                continue
            within = [
                v for v in (self._across(a - 2 * w, a), self._across(b, b + 2 * w)) if v is not None
            ]
            if len(within) < 2 or here < t.gradual_contrast * max(within):
                continue  # both sides must be seen steady: else it may be a camera move
            if any(self._is_cut(j) for j in range(max(1, a - w), min(len(self.frames), b + w))):
                continue
            if not self._middle_of_plateau(i, w, here):
                continue
            if self._last_gradual is not None and i - self._last_gradual <= 2 * w:
                continue  # the same transition, seen again a few frames on
            self._last_gradual = i
            return True
        return False
