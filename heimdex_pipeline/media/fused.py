"""The fused shot detector: content, histogram and hash scores of the decode pass's small frames,
an adaptive (rolling) ratio, and checks that tell a cut from a flash, a fade of one shot, or
camera motion; gradual transitions (dissolves, wipes, fades between shots) found by comparing
frames further apart, their boundary put at the transition's middle (or at its one dominant
step, when the "transition" is a hard cut). No scene is shorter than `min_scene_frames`, the first
included; a cut after a burst of damaged frames is judged across the burst; a change of structure
without a change of colour is a cut only when most of the picture changed. A step whose three
scores are each just short of a cut's is strong together; a cut out of motion into a still shot
stands out of the still side; a gradual transition out of a moving shot is judged against the
steadier side.

Everything is computed from the analysis planes the decode pass already makes (about 128 px
wide, planar YUV): no colour conversion, no second decode. Cuts come out a few frames late
(the look-ahead the checks need); `finish()` flushes the last ones.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

# How far back each frame is compared (frames): 1 for cuts; 2-6 to see a flash or damaged frame
# end; the longer ones for gradual transitions (a window of 2 x half-width, centred on its middle).
LOOKBACK = (1, 2, 3, 4, 5, 6, 8, 12, 16, 24, 32)
HALF_WIDTHS = (4, 6, 8, 12, 16)
RING = max(LOOKBACK) + 1  # the signatures kept: this frame's and those it looks back at
# rows of the histogram ring holding the frames LOOKBACK back from frame n, by n % RING
_RING_ROWS = [np.array([(n - k) % RING for k in LOOKBACK]) for n in range(RING)]
_NO_CONTENT = (0.0,) * len(LOOKBACK)  # content is measured one frame back only
HIST_BINS = 64  # luma 32, u 16, v 16
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
    # no scene shorter than this many frames, the first one included (no cut in a video's first
    # frames); only the last may be shorter, where the video ends (PySceneDetect: 15 too)
    min_scene_frames: int = 15
    spread: float = 0.5  # share of the picture a cut without a colour change must change

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


# Floors of "peaky" (content, histogram, hash): a score must stand this far above its neighbours.
PEAK_FLOORS = (0.015, 0.04, 0.12)
BLACK_LUMA, BLACK_STD = 24.0, 4.0  # darker and flatter than this: black, nothing to see
DARK_LUMA = 32.0  # a fade's dark part: below this the picture is not compared
BRIGHT_LUMA = 40.0  # before and after a dark dip, pictures this bright are compared
FLAT_STD = 5.0  # a picture this flat has no structure: its hash is noise
# A dip whose dim pictures either side differ by `dip_hash` is a boundary only when its pictures
# at full light differ by DIP_FULL too (hash + histogram): one shot that moves while it fades
# still looks like itself, in layout and colours; past DIP_SURE the dim pictures alone say two
# shots. Chosen on development seeds 0, 1, 3, 5, 7, 9 and seed 19's tuning half (65 fades of
# each kind): one shot's fades reach dim 0.38 / full 0.63; two shots' are at least dim 0.38 with
# full 0.88, or dim 0.41 with full 0.64.
DIP_FULL, DIP_SURE = 0.66, 0.42
FADE_IN_FRAMES = 20  # a fade in that still brightens after this many frames is judged here
SHAKY_HASH = 0.15  # neighbours' mean hash step above which the camera is shaking
SPREAD_GRID = (8, 6)  # cells the picture is cut into to see how much of it changed
# a cell changed when its mean |dY| is above SPREAD_LUMA and SPREAD_SHARE of the largest cell's
# (relative: a low-contrast picture changes by little everywhere, a moved object by much locally)
SPREAD_LUMA, SPREAD_SHARE = 3.0, 0.2
# all three scores this share of their cut thresholds: strong together (a cut between two
# pictures alike in layout, colour and light, each score just short of its own threshold)
TOGETHER = 0.7
# a cut without the spread over the picture still changes colour and light as a new shot does:
# content at this share of `cut_content` (an object jumping on a calm background reached 0.44)
SPREAD_CONTENT = 0.75
# a flat picture's hash is noise when it flickers; steady (every step around below this), it is
# the picture's faint structure and may tell a cut
STEADY_HASH = 0.1
# across a gradual transition, each of hist and hash at least this share of its threshold, the
# two together at least both thresholds (a dissolve of colours that changes structure less)
GRADUAL_EACH = 0.8
# a transition out of a moving shot into a still one: `gradual_contrast` times the steadier
# side's span, and this many times the moving side's (camera motion alone changes both alike)
ONE_SIDE_CONTRAST = 1.6
# ... in windows up to this half-width only: over longer spans a moving shot alone drifts as far
# from itself as from another shot (a sample clip's slow move, 32 frames across, did)
ONE_SIDE_MAX_W = 8
# frames after i that judging a cut into frame i reads (the flash test's five, the neighbours'
# three): its answer is final once they are in
CUT_READS_AHEAD = 6
MAX_BURST = 4  # damaged frames a cut may follow (more make a scene of their own: too short)
DETOUR = 0.6  # across a burst: the step over it is at most this share of the steps through it


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
    # and hash + histogram distance between the pictures where the fade out began and where
    # the fade in ended, at full light (None until the fade in has ended)
    dip_full: float | None = None
    # share of the picture (cells of SPREAD_GRID) whose luma changed from the frame k back:
    # k = 1 always; after a strong step, also k = 2 .. MAX_BURST + 1 (a cut across damage)
    spread: dict[int, float] = field(default_factory=dict)


@functools.cache
def _hist_sizes(luma: int, chroma: int) -> np.ndarray:
    """What each bin of a signature's 32 + 16 + 16 histogram counts are divided by."""
    return np.array([luma] * 32 + [chroma] * 32, np.float32)


class _Signature:
    """What frames are compared by: planes for the content score, histograms, a 63-bit DCT hash
    (an int: distances are one XOR and a bit count)."""

    __slots__ = ("hash", "hist", "luma", "planes", "std")

    def __init__(self, yuv420p: np.ndarray):
        rows = yuv420p.shape[0] * 2 // 3
        width = yuv420p.shape[1]
        flat = np.ascontiguousarray(yuv420p).reshape(-1)
        y = flat[: rows * width].reshape(rows, width)
        quarter = (rows // 2) * (width // 2)
        uv = flat[rows * width : rows * width + 2 * quarter]
        self.planes = (np.ascontiguousarray(y[::2, ::2]), uv)
        mean, std = cv2.meanStdDev(y)
        self.luma, self.std = float(mean[0, 0]), float(std[0, 0])
        counts = np.concatenate(
            [
                cv2.calcHist([y], [0], None, [32], [0, 256]),
                cv2.calcHist([uv[:quarter]], [0], None, [16], [0, 256]),
                cv2.calcHist([uv[quarter:]], [0], None, [16], [0, 256]),
            ]
        )
        self.hist = counts.ravel() / _hist_sizes(y.size, quarter)  # each share of its plane
        small = cv2.resize(y, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        low = cv2.dct(small)[:8, :8].ravel()[1:]
        bits = np.packbits(low > np.partition(low, 31)[31])  # above the median: 32 of 63 bits
        self.hash = int.from_bytes(bits.tobytes(), "big")

    def content(self, other: _Signature) -> tuple[float, float]:
        """Mean |dY|, |dU|, |dV| / 255 (luma at half resolution, chroma as it is), and the share
        of the picture whose luma changed (cells of SPREAD_GRID): an object that moves changes
        a few cells, a new shot nearly all."""
        diff = cv2.absdiff(self.planes[0], other.planes[0])  # uint8 |a - b|: exact
        luma = cv2.mean(diff)[0]
        chroma = cv2.mean(cv2.absdiff(self.planes[1], other.planes[1]))[0]
        cells = cv2.resize(diff.astype(np.float32), SPREAD_GRID, interpolation=cv2.INTER_AREA)
        changed = cells > max(SPREAD_LUMA, SPREAD_SHARE * float(cells.max()))
        return (luma + 2 * chroma) / 3 / 255, np.count_nonzero(changed) / changed.size

    def hash_distance(self, other: _Signature) -> float:
        return (self.hash ^ other.hash).bit_count() / 63


class FusedDetector:
    """Feed frames in order with `push`; each call returns the boundaries decided so far."""

    def __init__(self, thresholds: FusedThresholds | None = None):
        self.t = thresholds or FusedThresholds()
        self._signatures: deque[_Signature] = deque(maxlen=RING)
        self._hists = np.zeros((RING, HIST_BINS), np.float32)  # frame n's histogram at n % RING
        self.frames: list[_Frame] = []  # kept for the whole video: a few hundred bytes each
        self._dark_before: list[int] = [0]  # [j]: how many of frames [0, j) are dark
        # _is_cut's answers, kept once the frames they read (up to CUT_READS_AHEAD on) are in
        self._cuts: dict[int, bool] = {}
        self._decided = 0  # frames [0, _decided) are decided
        self._last_cut_s = -1e9
        self._last_cut_frame = 0  # the first scene starts at frame 0
        self._finished = False
        self._bright: _Signature | None = None  # the last bright picture
        self._dip: list[int] | None = None  # frames of the dark dip under way
        self._fade_top: _Signature | None = None  # the picture where the dip's fade out began
        # a dip that has ended, waiting for its fade in to end: (its boundary frame, the
        # picture where its fade out began)
        self._fading_in: tuple[int, _Signature] | None = None
        self._last_gradual: int | None = None
        self.cuts_s: list[float] = []

    @classmethod
    def replaying(cls, recorded: FusedDetector, thresholds: FusedThresholds) -> FusedDetector:
        """A detector holding another's recorded scores under other thresholds: `finish()`
        decides the whole video again without decoding (the benchmarks' threshold search)."""
        again = cls(thresholds)
        again.frames = recorded.frames
        again._dark_before = list(recorded._dark_before)
        return again

    def push(self, time_s: float, yuv420p: np.ndarray) -> list[float]:
        signature = _Signature(yuv420p)
        black = signature.luma < BLACK_LUMA and signature.std < BLACK_STD
        frame = _Frame(time_s, signature.luma, black, signature.std < FLAT_STD)
        seen = len(self.frames)
        if seen:
            signatures = self._signatures
            if seen >= RING - 1:
                known, rows = LOOKBACK, _RING_ROWS[seen % RING]
            else:
                known = tuple(k for k in LOOKBACK if k <= seen)
                rows = np.array([(seen - k) % RING for k in known])
            # histogram distances to every frame looked back at, in one operation
            hist_d = (np.abs(self._hists[rows] - signature.hist).sum(axis=1) / 6).tolist()
            own = signature.hash
            hash_d = [(own ^ signatures[-k].hash).bit_count() / 63 for k in known]
            scores = zip(_NO_CONTENT, hist_d, hash_d, strict=False)  # known may be shorter
            frame.back = dict(zip(known, scores, strict=True))
            content, frame.spread[1] = signature.content(signatures[-1])
            frame.back[1] = (content, hist_d[0], hash_d[0])
            if self._strong(frame.back[1]):  # a cut may come here after damaged frames
                for k in range(2, min(MAX_BURST + 1, seen) + 1):
                    frame.spread[k] = signature.content(signatures[-k])[1]
        self._hists[seen % RING] = signature.hist
        self.frames.append(frame)
        self._dark_before.append(self._dark_before[-1] + (signature.luma < DARK_LUMA))
        self._follow_dips(signature)
        self._signatures.append(signature)
        return self._decide(upto=len(self.frames) - LATENCY)

    def _follow_dips(self, signature: _Signature) -> None:
        """A fade to dark and back (a dip): once the picture is bright again, mark the dip's
        boundary frame (where it leaves its darkest) with how different
        the pictures before and after are. A video that starts dark has no picture before."""
        index = len(self.frames) - 1
        self._follow_fade_in(signature, index)
        if signature.luma < DARK_LUMA:
            if self._dip is None:
                self._dip = []
                self._fade_top = self._top_of_fade_out()
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
            if self._fade_top is not None:
                self._fading_in = (where, self._fade_top)
        self._bright = signature

    def _top_of_fade_out(self) -> _Signature | None:
        """The picture where the fade out into the dip starting now began: back from the last
        frame while each frame before is brighter."""
        if not self._signatures:
            return None
        k = 1
        while k < len(self._signatures) and (
            self._signatures[-k - 1].luma > self._signatures[-k].luma + 0.5
        ):
            k += 1
        return self._signatures[-k]

    def _follow_fade_in(self, signature: _Signature, index: int) -> None:
        """Once a dip's fade in stops brightening (or has gone on FADE_IN_FRAMES), compare its
        last picture with the one where the fade out began: the dip's `dip_full`."""
        if self._fading_in is None or not self._signatures:
            return
        where, top = self._fading_in
        last = self._signatures[-1]
        if signature.luma <= last.luma + 0.5 or index - where > FADE_IN_FRAMES:
            self._fading_in = None
            hist = float(np.abs(last.hist - top.hist).sum()) / 6
            self.frames[where].dip_full = last.hash_distance(top) + hist

    def finish(self) -> list[float]:
        self._finished = True
        if self._fading_in is not None:  # the video ends while the fade in brightens
            self._follow_fade_in(self._signatures[-1], len(self.frames))
        return self._decide(upto=len(self.frames))

    def may_start_shot(self) -> bool:
        """The last frame's step passes a cut's first test (`_is_cut` asks the same first)."""
        step = self.frames[-1].back.get(1) if self.frames else None
        return step is None or self._strong(step)

    def _strong(self, step: tuple[float, float, float]) -> bool:
        """A step large enough, in one score or another, to be a cut."""
        content, hist, hashd = step
        t = self.t
        return (
            hashd >= t.cut_hash
            or hist >= t.cut_hist
            or content >= t.cut_content
            or min(hashd / t.cut_hash, hist / t.cut_hist, content / t.cut_content) >= TOGETHER
        )

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
        shortest = self.t.min_scene_frames
        while self._decided < upto:
            i = self._decided
            self._decided += 1
            if i - self._last_cut_frame < shortest:
                continue  # the scene since the last boundary (or the start) would be too short
            if self._finished and all(f.black for f in self.frames[i:]):
                continue  # black to the end: the video ends, no shot starts
            at = self._boundary_at(i)
            if at is None or at - self._last_cut_frame < shortest:
                continue
            time_s = self.frames[at].time_s
            if time_s - self._last_cut_s >= self.t.min_gap_s:
                self._last_cut_s, self._last_cut_frame = time_s, at
                self.cuts_s.append(time_s)
                found.append(time_s)
        return found

    def _boundary_at(self, i: int) -> int | None:
        """The frame a boundary decided at frame i puts the new shot's start on, if any: i for
        a cut or a dip; for a gradual transition its middle, or its one dominant step when the
        "transition" is a hard cut the cut test turned down."""
        if i == 0:
            return None
        if self._is_cut(i) or self._ends_dip_between_shots(i):
            return i
        w = self._is_gradual_middle(i)
        if w is not None:
            return self._dominant_step(i - w, i + w, i)
        return None

    def _dominant_step(self, a: int, b: int, middle: int) -> int:
        """The step in frames (a, b] that makes most of the change from a to b, if one does (a
        hard cut, seen by the gradual test when the cut test turned it down); else `middle`.
        The step is chosen only at or after `middle`: a boundary is never placed on a frame
        already decided."""
        across = self.frames[b].back[b - a]
        total = across[1] + across[2]
        best, at = 0.0, middle
        for j in range(a + 1, b + 1):
            step = self.frames[j].back.get(1)
            if step is not None and step[1] + step[2] > best:
                best, at = step[1] + step[2], j
        if best >= 0.6 * total and at >= middle:
            return at
        return middle

    def _peaky(
        self, step: tuple[float, float, float], neighbours: list[int]
    ) -> tuple[tuple[bool, bool, bool], float]:
        """Which of the step's three scores stand out from those of the steps into the
        neighbour frames, and the neighbours' mean hash distance between pictures with structure
        (high: the camera shakes, the hash says little)."""
        sides = [
            [
                self.frames[j].back[1]
                for j in side
                if 0 < j < len(self.frames) and 1 in self.frames[j].back
            ]
            for side in (neighbours[:3], neighbours[3:])
        ]
        steps = sides[0] + sides[1]
        if not steps:
            return (True, True, True), 0.0
        means = [sum(s[n] for s in steps) / len(steps) for n in range(3)]
        peaky = tuple(step[n] >= self.t.adaptive * means[n] + PEAK_FLOORS[n] for n in range(3))
        calm_hash = self._stands_out_of_one_side(step, sides)
        if calm_hash is not None:  # the motion is on the other side: the hash says much here
            return (True, True, True), calm_hash
        # shake is judged by steps between pictures with structure: a flat picture's hash is
        # noise (the bottom of a fade would make any step out of it look like shake)
        hashes = [
            self.frames[j].back[1][2]
            for j in neighbours
            if 0 < j < len(self.frames)
            and 1 in self.frames[j].back
            and not (self.frames[j].flat or self.frames[j - 1].flat)
        ]
        return peaky, sum(hashes) / len(hashes) if hashes else 0.0  # type: ignore[return-value]

    def _stands_out_of_one_side(
        self, step: tuple[float, float, float], sides: list[list[tuple[float, float, float]]]
    ) -> float | None:
        """Motion on one side, calm on the other (a shaking camera, then a cut to a still
        shot): the step is peaky against the calm side in all three scores and at least as large
        as every step around it in each (the end of the motion alone is not). The calm side's
        mean hash step if so, else None. `sides`: the steps into the neighbours before and
        after."""
        if not all(sides):
            return None
        calm = min(sides, key=lambda side: sum(s[2] for s in side))
        every = sides[0] + sides[1]
        stands_out = all(
            step[n] >= self.t.adaptive * sum(s[n] for s in calm) / len(calm) + PEAK_FLOORS[n]
            and step[n] >= max(s[n] for s in every)
            for n in range(3)
        )
        return sum(s[2] for s in calm) / len(calm) if stands_out else None

    def _is_cut(self, i: int) -> bool:
        """A hard cut into frame i (see `_judge_cut`), judged once the frames it reads are in."""
        known = self._cuts.get(i)
        if known is None:
            known = self._judge_cut(i)
            if self._finished or i + CUT_READS_AHEAD < len(self.frames):
                self._cuts[i] = known
        return known

    def _judge_cut(self, i: int) -> bool:
        """A hard cut into frame i: the step from frame i - 1, or, when the frames just before
        are a burst of damage (each step into them strong), the step from the last frame before
        the burst; and the new picture lasts (a damaged frame does not)."""
        if self._cut_from(i, 1) and self._persists(i):
            return True
        if self.frames[i].flat or not self._strong(self.frames[i].back[1]):
            return False  # across damage, only into a picture with structure (black: a fade)
        for burst in range(1, MAX_BURST + 1):
            first = i - burst
            if first < 2 or not self._strong(self.frames[first].back[1]):
                break  # the steps from the last clean frame to frame i must all be strong
            gap = burst + 1
            if gap not in self.frames[i].back or self.frames[i - gap].flat:
                break  # a flat picture before (the bottom of a fade) is nothing to judge from
            if self._moving_into(i - gap):
                continue  # not the last clean frame: the damage, or a moving shot's motion
            # Damage is a detour: the steps through the burst add up to much more than the
            # step over it (a fade or motion goes one way: its steps add up to about that).
            over = sum(self.frames[i].back[gap][1:])
            through = sum(sum(self.frames[j].back[1][1:]) for j in range(first, i + 1))
            if over <= DETOUR * through and self._cut_from(i, gap) and self._persists(i):
                return True
        return False

    def _moving_into(self, p: int) -> bool:
        """The camera or the scene moves into frame p: the hash steps into the three frames up
        to it average a shaking camera's (a fast pan's steps are each strong, as damage's are)."""
        steps = [self.frames[j].back[1][2] for j in range(p - 2, p + 1) if 1 in self.frames[j].back]
        return bool(steps) and sum(steps) / len(steps) >= SHAKY_HASH

    def _persists(self, i: int) -> bool:
        """The picture at frame i is still there a frame later: the next step is small beside
        the cut's (a damaged or flashed frame is gone the frame after)."""
        if i + 1 >= len(self.frames):
            return True
        _, hist, hashd = self.frames[i].back[1]
        after = self.frames[i + 1].back[1]
        if self.frames[i].flat or self.frames[i + 1].flat:  # a flat picture's hash is noise
            return not self._strong((after[0], after[1], 0.0)) or after[1] < 0.5 * hist
        return not self._strong(after) or after[1] + after[2] < 0.5 * (hist + hashd)

    def _cut_from(self, i: int, gap: int) -> bool:
        """The scores from frame i - gap to frame i make a cut, judged against the steps around
        (before frame i - gap and after frame i)."""
        t = self.t
        p = i - gap  # the last frame of the old shot
        if self.frames[i].black and self.frames[p].black:
            return False
        content, hist, hashd = self.frames[i].back[gap]
        if gap > 1:
            content = t.cut_content  # not measured beyond one step: judged by the others
        if not self._strong((content, hist, hashd)):
            return False
        neighbours = [*range(p - 2, p + 1), *range(i + 1, i + 4)]
        (peaky_content, peaky_hist, peaky_hash), hash_around = self._peaky(
            (content, hist, hashd), neighbours
        )
        if gap > 1:
            peaky_content = peaky_hist  # nothing else to go by
        black_edge = self.frames[i].black or self.frames[p].black
        flat_edge = self.frames[i].flat or self.frames[p].flat  # no structure to hash
        shaky = hash_around >= SHAKY_HASH  # the hash changes every frame: it says little
        if black_edge and not (peaky_content and content >= t.cut_content / 2):
            return False  # a fade from or to black, not a cut
        steady = peaky_hash and self._steady_structure(i, gap, neighbours)
        if flat_edge and not peaky_content and not steady:
            return False  # a flat picture's histogram jumps bins on a small change of light
        # Structure without colour: a new shot only when most of the picture changed, not when
        # one object moved over a calm background (a slideshow, a screen recording).
        spread_ok = (
            hist >= t.cut_hist
            or self.frames[i].spread.get(gap, 0.0) >= t.spread
            or (gap == 1 and content >= SPREAD_CONTENT * t.cut_content)
        )
        structure = (
            peaky_hash
            and (peaky_hist or peaky_content)
            and (not shaky or hist >= t.cut_hist / 2)
            and spread_ok
        )
        only_structure = peaky_hash and not shaky and hashd >= t.cut_hash and spread_ok
        colours = peaky_hist and peaky_content and hist >= t.cut_hist / 2 and (shaky or flat_edge)
        if not (structure or only_structure or colours):
            return False  # fast motion (each step differs as much), a light, a counter, a jolt
        # A flash, damaged frames or frames of another shot spliced in: a picture of the last
        # six frames before comes back within five frames after, as close as pictures of one
        # shot are (not merely closer than the frames around the jump, which damage inflates).
        # Six: the end of a flash of three frames is judged against the frames before it.
        jump = hist + hashd
        for before in range(max(0, p - 5), p + 1):
            for after in range(i, min(len(self.frames), i + 6)):
                found = self.frames[after].back.get(after - before)
                if (
                    after - before >= 2
                    and found is not None
                    and found[1] + found[2] < t.flash_back * jump
                    and not self._strong((0.0, found[1], found[2]))
                ):
                    return False
        return True

    def _steady_structure(self, i: int, gap: int, neighbours: list[int]) -> bool:
        """Into or out of a flat picture, a cut the content score is too faint to see (a night
        shot): the histogram steps as a cut's does and the hash is steady in every step around
        (the caller has seen it step out of them; a flat picture's hash that flickers says
        nothing)."""
        _, hist, _ = self.frames[i].back[gap]
        if hist < self.t.cut_hist / 2:
            return False
        steps = [self.frames[j].back[1] for j in neighbours if 0 < j < len(self.frames)]
        return len(steps) == 6 and max(s[2] for s in steps) < STEADY_HASH

    def _ends_dip_between_shots(self, i: int) -> bool:
        """A dip to dark whose pictures before and after differ: unless a cut led into it (the
        boundary was there), the new shot starts where the dark ends."""
        found, full = self.frames[i].dip_hash, self.frames[i].dip_full
        if found is None or found < self.t.dip_hash:
            return False
        if found < DIP_SURE and full is not None and full < DIP_FULL:
            return False  # one shot faded out and back in
        start = i
        while start > 0 and self.frames[start - 1].luma < DARK_LUMA:
            start -= 1
        return not any(self._is_cut(j) for j in range(max(1, start - 1), i))

    def _across(self, a: int, b: int) -> float | None:
        """hist + hash between frames a and b (b - a in LOOKBACK), None when either is dark or
        flat (nothing to compare) or a dark dip lies between them (a fade: the dip's business)."""
        if a < 0 or b >= len(self.frames):
            return None
        if self._dark_before[b + 1] != self._dark_before[a]:
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

    def _is_gradual_middle(self, i: int) -> int | None:
        """A transition centred on frame i: the frames w before and w after differ as two shots
        do, much more than the same span before or after does (not camera motion), no single
        step near them is a cut, and the difference is largest centred here."""
        t = self.t
        for w in HALF_WIDTHS:
            a, b = i - w, i + w
            found = self.frames[b].back.get(2 * w) if a >= 0 and b < len(self.frames) else None
            if found is None:
                continue
            ratios = (found[1] / t.gradual_hist, found[2] / t.gradual_hash)
            if min(ratios) < GRADUAL_EACH or sum(ratios) < 2:
                continue  # the ends must differ as two shots do, in colour and in structure
            here = self._across(a, b)  # (asked second: the test above rules out most frames)
            if here is None:
                continue
            within = [
                v for v in (self._across(a - 2 * w, a), self._across(b, b + 2 * w)) if v is not None
            ]
            if (
                len(within) < 2
                or here < t.gradual_contrast * min(within)
                or here
                < (ONE_SIDE_CONTRAST if w <= ONE_SIDE_MAX_W else t.gradual_contrast) * max(within)
            ):
                continue  # both sides must be seen, steadier: else it may be a camera move
            if any(self._is_cut(j) for j in range(max(1, a - w), min(len(self.frames), b + w))):
                continue
            if not self._middle_of_plateau(i, w, here):
                continue
            if self._last_gradual is not None and i - self._last_gradual <= 2 * w:
                continue  # the same transition, seen again a few frames on
            self._last_gradual = i
            return w
        return None
