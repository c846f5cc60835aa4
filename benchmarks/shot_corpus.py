"""A generated ground-truth corpus for shot detection: seeded clips whose boundaries are known.

Shots are cut from the sample clips (between their known cuts, so each piece is one shot) and
from procedural pictures; each clip puts one phenomenon between or inside shots: a hard cut, a
gradual transition (its boundary at the transition's middle, with its span), or something that
must not be taken for a boundary (a fade of one shot, a flash, a pan, a zoom, shake, a moving
object, compression damage, dropped frames). Every clip also holds one plain hard cut elsewhere,
so precision and recall are defined in every category. Clips are written with several codecs,
containers, frame rates (one variable), sizes and pixel formats. Same seed, same corpus.

    build_corpus(folder, sample_videos, per_category=20, seed=0) -> list[CorpusClip]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

WORK_SIZE = (256, 144)  # frames are made at this size, then scaled to the clip's size


@dataclass(frozen=True)
class Boundary:
    """Where a new shot starts (a gradual transition: its middle), and a transition's span."""

    time_s: float
    span_s: tuple[float, float] | None = None


@dataclass
class CorpusClip:
    path: str
    category: str
    boundaries: list[Boundary]
    codec: str
    fps: float
    variable_fps: bool
    size: tuple[int, int]
    pix_fmt: str
    frames: int
    seed: int
    split: str = "tune"  # "tune" (thresholds are chosen on these) or "held_out"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Format:
    codec: str
    container: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


FORMATS = [
    Format("libx264", "mp4", "yuv420p", {"preset": "ultrafast", "crf": "23"}),
    Format("libx264", "mkv", "yuv444p", {"preset": "ultrafast", "crf": "20"}),
    Format("mpeg4", "avi", "yuv420p", {"qscale": "4"}),
    Format("mjpeg", "mov", "yuvj420p", {"q:v": "5"}),
    Format("libvpx", "webm", "yuv420p", {"deadline": "realtime", "cpu-used": "8", "b": "1M"}),
]
TIMED_CONTAINERS = ("mp4", "mkv", "mov")  # frame times as written; avi and webm: frame count x rate
SIZES = [(320, 180), (256, 144), (426, 240), (240, 320)]
RATES = [25.0, 30.0, 24.0, 29.97, 15.0]


class ShotBank:
    """Pieces of single shots from the sample clips, at WORK_SIZE, RGB."""

    def __init__(self, sample_videos: Path, frames_per_shot: int = 48, max_shots: int = 80):
        cuts = json.loads((sample_videos / "cuts.json").read_text())
        self.shots: list[np.ndarray] = []
        self.shot_ids: list[str] = []  # pieces of one shot share an id: never cut between them
        for name in sorted(cuts):
            if name.startswith("_") or not (sample_videos / name).exists():
                continue
            info = cuts[name]
            if info.get("hard_negative") or "fade" in name:
                continue  # keep the bank free of motion and fades we did not put there
            self._take(sample_videos / name, info.get("cuts_s", []), frames_per_shot)
            if len(self.shots) >= max_shots:
                break
        if len(self.shots) < 8:
            raise RuntimeError(f"too few shots in {sample_videos} to build a corpus")

    def _take(self, path: Path, cuts_s: list[float], length: int) -> None:
        bounds = [0.0, *cuts_s, float("inf")]
        current: list[np.ndarray] = []
        shot = 0
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base) - float(
                    (stream.start_time or 0) * stream.time_base
                )
                while t >= bounds[shot + 1] - 1e-3:
                    current, shot = [], shot + 1
                # skip the first frames of a shot (a cut's neighbourhood), keep up to `length`
                rgb = frame.to_ndarray(format="rgb24", width=WORK_SIZE[0], height=WORK_SIZE[1])
                current.append(rgb)
                if len(current) == length + 4:  # a piece; the shot may give more
                    if _plain_shot(np.stack(current[4:])):
                        self.shots.append(np.stack(current[4:]))
                        self.shot_ids.append(f"{path.name}#{shot}")
                    current = current[-4:]

    def pick(self, rng: np.random.Generator, length: int, avoid: int | None = None):
        """`length` frames of one shot (looped back and forth if the piece is shorter)."""
        index = int(rng.integers(len(self.shots)))
        while avoid is not None and self.shot_ids[index] == self.shot_ids[avoid]:
            index = int(rng.integers(len(self.shots)))
        piece = self.shots[index]
        order = np.concatenate([np.arange(len(piece)), np.arange(len(piece) - 2, 0, -1)])
        start = int(rng.integers(len(order)))
        return index, piece[np.take(order, range(start, start + length), mode="wrap")]


def _plain_shot(frames: np.ndarray) -> bool:
    """A piece fit to stand for "a shot": lit, with something in it, no fade or cut inside."""
    luma = frames.mean(axis=(1, 2, 3))
    spread = frames.std(axis=(1, 2, 3))
    steps = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    return bool(
        luma.min() > 45 and luma.max() < 215 and spread.min() > 25
        and np.ptp(luma) < 25 and (steps.max() if len(steps) else 0) < 30
    )  # fmt: skip


# Procedural pictures -----------------------------------------------------------------------


def texture(rng: np.random.Generator, length: int, tint=None) -> np.ndarray:
    """A smoothed noise texture drifting slowly (one shot); greyscale times `tint` if given."""
    w, h = WORK_SIZE
    big = rng.integers(0, 256, (h * 2, w * 2, 3), dtype=np.uint8)
    big = cv2.GaussianBlur(big, (0, 0), float(rng.uniform(2, 6)))
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX)
    if tint is not None:
        gray = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
        big = np.clip(gray[..., None] * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)
    dx, dy = rng.uniform(-1, 1, 2)
    x0, y0 = w // 2, h // 2
    return np.stack(
        [
            big[int(y0 + dy * i) : int(y0 + dy * i) + h, int(x0 + dx * i) : int(x0 + dx * i) + w]
            for i in range(length)
        ]
    )


def flat(rng: np.random.Generator, length: int) -> np.ndarray:
    """A flat colour with light sensor noise and a slow drift of brightness."""
    w, h = WORK_SIZE
    colour = rng.integers(30, 226, 3)
    frames = np.empty((length, h, w, 3), np.uint8)
    for i in range(length):
        noise = rng.normal(0, 2.0, (h, w, 3))
        frames[i] = np.clip(colour + noise + i * 0.2, 0, 255)
    return frames


def big_picture(rng: np.random.Generator, bank: ShotBank, scale: float = 2.0) -> np.ndarray:
    """One frame of the bank, enlarged: material for pans and zooms."""
    _, piece = bank.pick(rng, 1)
    w, h = WORK_SIZE
    return cv2.resize(piece[0], (int(w * scale), int(h * scale)), interpolation=cv2.INTER_CUBIC)


def crop(picture: np.ndarray, x: float, y: float, zoom: float = 1.0) -> np.ndarray:
    w, h = WORK_SIZE
    cw, ch = int(w / zoom), int(h / zoom)
    x = int(np.clip(x, 0, picture.shape[1] - cw))
    y = int(np.clip(y, 0, picture.shape[0] - ch))
    return cv2.resize(picture[y : y + ch, x : x + cw], (w, h), interpolation=cv2.INTER_LINEAR)


# Categories: each returns the frames, the boundary frame indices (hard), and gradual spans
# (first, last frame index), before the clip's plain hard cut is added --------------------


@dataclass
class Made:
    frames: list[np.ndarray]
    hard: list[int] = field(default_factory=list)
    gradual: list[tuple[int, int]] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)  # frame indices whose time is skipped


def _natural_pair(rng, bank, n):
    a_index, a = bank.pick(rng, n)
    _, b = bank.pick(rng, n, avoid=a_index)
    return a, b


def cut_natural(rng, bank) -> Made:
    a, b = _natural_pair(rng, bank, int(rng.integers(20, 40)))
    return Made([*a, *b], hard=[len(a)])


def cut_textured_flat(rng, bank) -> Made:
    n = int(rng.integers(20, 40))
    a = bank.pick(rng, n)[1] if rng.random() < 0.5 else texture(rng, n)
    b = flat(rng, n)
    if rng.random() < 0.5:
        a, b = b, a
    return Made([*a, *b], hard=[len(a)])


def cut_similar_colours(rng, bank) -> Made:
    n = int(rng.integers(20, 40))
    tint = rng.uniform(120, 255, 3)
    a = texture(rng, n, tint)
    b = texture(rng, n, tint * rng.uniform(0.92, 1.08, 3))
    return Made([*a, *b], hard=[len(a)])


def cut_dark(rng, bank) -> Made:
    a, b = _natural_pair(rng, bank, int(rng.integers(20, 40)))
    gain = rng.uniform(0.18, 0.35)  # a night scene, not black
    return Made([*(a * gain).astype(np.uint8), *(b * gain).astype(np.uint8)], hard=[len(a)])


def dissolve(rng, bank) -> Made:
    span = int(rng.integers(8, 25))
    a, b = _natural_pair(rng, bank, int(rng.integers(20, 35)) + span)
    before = len(a) - span
    frames = list(a[:before])
    for k in range(span):
        alpha = (k + 1) / (span + 1)
        frames.append(
            cv2.addWeighted(a[before + k], 1 - alpha, b[k], alpha, 0)  # both moving
        )
    frames += list(b[span:])
    return Made(frames, gradual=[(before, before + span - 1)])


def wipe(rng, bank) -> Made:
    span = int(rng.integers(8, 20))
    a, b = _natural_pair(rng, bank, int(rng.integers(20, 35)) + span)
    before = len(a) - span
    w = WORK_SIZE[0]
    frames = list(a[:before])
    for k in range(span):
        edge = int(w * (k + 1) / (span + 1))
        frame = a[before + k].copy()
        frame[:, :edge] = b[k][:, :edge]
        frames.append(frame)
    frames += list(b[span:])
    return Made(frames, gradual=[(before, before + span - 1)])


def _fade(frames: np.ndarray, out: bool) -> list[np.ndarray]:
    n = len(frames)
    gains = [(n - k) / (n + 1) if out else (k + 1) / (n + 1) for k in range(n)]
    return [(f * g).astype(np.uint8) for f, g in zip(frames, gains, strict=True)]


def fade_between_shots(rng, bank) -> Made:
    down, black_n, up = (
        int(rng.integers(6, 15)),
        int(rng.integers(0, 8)),
        int(rng.integers(6, 15)),
    )
    a, b = _natural_pair(rng, bank, int(rng.integers(15, 30)) + max(down, up))
    head = len(a) - down
    black = [np.zeros_like(a[0])] * black_n
    frames = [*a[:head], *_fade(a[head:], out=True), *black, *_fade(b[:up], out=False), *b[up:]]
    return Made(frames, gradual=[(head, head + down + black_n + up - 1)])


def fade_within_shot(rng, bank) -> Made:
    """A shot fades to black and comes back as the same shot: no boundary."""
    down, black_n, up = (
        int(rng.integers(6, 15)),
        int(rng.integers(0, 8)),
        int(rng.integers(6, 15)),
    )
    _, a = bank.pick(rng, 20 + down + up + 20)
    frames = [*a[:20], *_fade(a[20 : 20 + down], True), *[np.zeros_like(a[0])] * black_n,
              *_fade(a[20 + down : 20 + down + up], False), *a[20 + down + up :]]  # fmt: skip
    return Made(frames)


def flash(rng, bank) -> Made:
    _, a = bank.pick(rng, int(rng.integers(30, 50)))
    frames = list(a)
    at = int(rng.integers(8, len(a) - 8))
    for k in range(int(rng.integers(1, 4))):
        strength = rng.uniform(0.6, 1.0)
        frames[at + k] = cv2.addWeighted(
            frames[at + k], 1 - strength, np.full_like(a[0], 255), strength, 0
        )
    return Made(frames)


def fast_pan(rng, bank) -> Made:
    picture = big_picture(rng, bank, 2.5)
    n = int(rng.integers(30, 50))
    w, h = WORK_SIZE
    span_x, span_y = picture.shape[1] - w, picture.shape[0] - h
    direction = rng.choice([-1, 1])
    frames = [
        crop(picture, span_x * (k / n if direction > 0 else 1 - k / n), span_y * 0.5)
        for k in range(n)
    ]
    return Made(frames)


def zoom(rng, bank) -> Made:
    picture = big_picture(rng, bank, 1.0)
    n = int(rng.integers(30, 50))
    w, h = WORK_SIZE
    zooms = np.linspace(1.0, rng.uniform(2.0, 3.0), n)
    if rng.random() < 0.5:
        zooms = zooms[::-1]
    frames = [crop(picture, (w - w / z) / 2, (h - h / z) / 2, z) for z in zooms]
    return Made(frames)


def shake(rng, bank) -> Made:
    picture = big_picture(rng, bank, 1.3)
    n = int(rng.integers(30, 50))
    cx, cy = (picture.shape[1] - WORK_SIZE[0]) / 2, (picture.shape[0] - WORK_SIZE[1]) / 2
    frames = [crop(picture, cx + rng.normal(0, 12), cy + rng.normal(0, 8)) for _ in range(n)]
    return Made(frames)


def moving_object(rng, bank) -> Made:
    _, background = bank.pick(rng, 1)
    n = int(rng.integers(30, 50))
    w, h = WORK_SIZE
    size = int(rng.integers(h // 3, h * 2 // 3))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    frames = []
    for k in range(n):
        frame = background[0].copy()
        x = int(-size + (w + size) * k / n)
        cv2.rectangle(frame, (x, h // 2 - size // 2), (x + size, h // 2 + size // 2), colour, -1)
        frames.append(frame)
    return Made(frames)


def compression_damage(rng, bank) -> Made:
    """Blocks of a frame or two replaced by garbage, as a lost packet leaves them."""
    _, a = bank.pick(rng, int(rng.integers(30, 50)))
    frames = [f.copy() for f in a]
    at = int(rng.integers(8, len(a) - 8))
    for k in range(int(rng.integers(1, 3))):
        frame = frames[at + k]
        for _ in range(int(rng.integers(4, 12))):
            y, x = int(rng.integers(0, WORK_SIZE[1] - 16)), int(rng.integers(0, WORK_SIZE[0] - 16))
            frame[y : y + 16, x : x + 16 * int(rng.integers(1, 5))] = rng.integers(0, 256, 3)
    return Made(frames)


def dropped_frames(rng, bank) -> Made:
    """A shot with frames missing: time jumps, the picture jumps a little."""
    _, a = bank.pick(rng, int(rng.integers(40, 60)))
    keep = np.ones(len(a), bool)
    for _ in range(int(rng.integers(1, 4))):
        at = int(rng.integers(5, len(a) - 10))
        keep[at : at + int(rng.integers(2, 6))] = False
    frames = [f for f, k in zip(a, keep, strict=True) if k]
    dropped = [int(i) for i in np.flatnonzero(~keep)]
    return Made(frames, dropped=dropped)


# Kinds a detector made with the corpus above still got wrong on footage it never saw ---------


def _garbage(rng, frame: np.ndarray, cover: float) -> np.ndarray:
    """Blocks of the frame replaced by flat garbage or by other blocks of it, over about `cover`
    of its area (a lost slice, a decoder's error concealment)."""
    out = frame.copy()
    w, h = WORK_SIZE
    for _ in range(int(cover * (w // 16) * (h // 16))):
        y, x = int(rng.integers(0, h - 16)), int(rng.integers(0, w - 16))
        if rng.random() < 0.5:
            out[y : y + 16, x : x + 16] = rng.integers(0, 256, 3)
        else:
            sy, sx = int(rng.integers(0, h - 16)), int(rng.integers(0, w - 16))
            out[y : y + 16, x : x + 16] = frame[sy : sy + 16, sx : sx + 16]
    return out


def leading_frame(rng, bank) -> Made:
    """The first frame or two are not the shot's picture: black, damaged, exposed differently
    (a codec's first picture), or a stray frame of another shot. No boundary: a video does not
    start with a one-frame scene."""
    index, a = bank.pick(rng, int(rng.integers(30, 50)))
    frames = [f.copy() for f in a]
    kind = int(rng.integers(4))
    for k in range(int(rng.integers(1, 3)) if kind != 3 else 1):
        if kind == 0:
            frames[k] = np.zeros_like(a[0]) + np.uint8(rng.integers(0, 12))
        elif kind == 1:
            frames[k] = _garbage(rng, frames[k], float(rng.uniform(0.5, 1.0)))
        elif kind == 2:
            gain = float(rng.choice([rng.uniform(0.4, 0.7), rng.uniform(1.3, 1.7)]))
            blurred = cv2.GaussianBlur(frames[k], (0, 0), float(rng.uniform(0.5, 2.5)))
            frames[k] = np.clip(blurred * gain, 0, 255).astype(np.uint8)
        else:
            frames[k] = bank.pick(rng, 1, avoid=index)[1][0]
    return Made(frames)


def _calm_background(rng, w: int, h: int) -> np.ndarray:
    """A flat or gently graded background (a desktop, a slide, a wall)."""
    a, b = rng.integers(30, 226, 3), rng.integers(30, 226, 3)
    if rng.random() < 0.5:
        b = np.clip(a + rng.integers(-25, 26, 3), 0, 255)
    ramp = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else (
        np.linspace(0, 1, h)[:, None, None])  # fmt: skip
    return np.broadcast_to(a + (b - a) * ramp, (h, w, 3)).astype(np.float32)


def object_jumps(rng, bank) -> Made:
    """One long shot: a calm background and one object that stays put, then jumps to another
    place every second or so, leaving at one edge and coming back at the other (a slideshow over
    one background, a screen recording, animation, surveillance). No boundary."""
    w, h = WORK_SIZE
    background = _calm_background(rng, w, h)
    size = int(rng.integers(h // 4, h // 2))
    if rng.random() < 0.5:
        thing = cv2.resize(bank.pick(rng, 1)[1][0], (size, size)).astype(np.float32)
    else:
        thing = np.zeros((size, size, 3), np.float32) + rng.integers(0, 256, 3)
        for row in range(4, size - 4, 8):  # a card with lines of "text"
            thing[row : row + 3, 4 : int(rng.integers(size // 2, size - 4))] = rng.integers(0, 80)
    x, y = float(rng.uniform(0, w - size)), float(rng.uniform(0, h - size))
    frames = []
    for _ in range(int(rng.integers(3, 5))):
        for _ in range(int(rng.integers(20, 32))):
            frame = background + rng.normal(0, 1.5, background.shape)
            left = int(x)
            for start in (left, left - (w + size)):  # wraps: out at one edge, in at the other
                lo, hi = max(0, start), min(w, start + size)
                if lo < hi:
                    top = int(np.clip(y, 0, h - size))
                    frame[top : top + size, lo:hi] = thing[:, lo - start : hi - start]
            frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        x = (x + rng.uniform(0.3, 0.7) * (w + size)) % (w + size)
        y = float(np.clip(y + rng.uniform(-h / 4, h / 4), 0, h - size))
    return Made(frames)


def damage_before_cut(rng, bank) -> Made:
    """A burst of 1-4 damaged frames at the end of a shot, then a hard cut to another."""
    a, b = _natural_pair(rng, bank, int(rng.integers(25, 40)))
    frames = [f.copy() for f in a]
    burst = int(rng.integers(1, 5))
    for k in range(len(a) - burst, len(a)):
        frames[k] = _garbage(rng, frames[k], float(rng.uniform(0.3, 0.9)))
    return Made([*frames, *b], hard=[len(a)])


def mjpeg_hard_cut(rng, bank) -> Made:
    """Hard cuts written as MJPEG in MOV (full-range yuvj420p, every frame a key frame)."""
    maker = [cut_natural, cut_similar_colours, cut_textured_flat, cut_dark][int(rng.integers(4))]
    return maker(rng, bank)


CATEGORIES: dict[str, tuple[Callable[..., Made], bool]] = {  # name: (maker, is a boundary)
    "cut_natural": (cut_natural, True),
    "cut_textured_flat": (cut_textured_flat, True),
    "cut_similar_colours": (cut_similar_colours, True),
    "cut_dark": (cut_dark, True),
    "dissolve": (dissolve, True),
    "wipe": (wipe, True),
    "fade_between_shots": (fade_between_shots, True),
    "fade_within_shot": (fade_within_shot, False),
    "flash": (flash, False),
    "fast_pan": (fast_pan, False),
    "zoom": (zoom, False),
    "shake": (shake, False),
    "moving_object": (moving_object, False),
    "compression_damage": (compression_damage, False),
    "dropped_frames": (dropped_frames, False),
    # added for the kinds issue 19 found on held-out footage (kept last: the clips above keep
    # their seeds)
    "leading_frame": (leading_frame, False),
    "object_jumps": (object_jumps, False),
    "damage_before_cut": (damage_before_cut, True),
    "mjpeg_hard_cut": (mjpeg_hard_cut, True),
}
FORMAT_OF = {"mjpeg_hard_cut": Format("mjpeg", "mov", "yuvj420p", {"q:v": "5"})}


def _another_picture(first: np.ndarray, last: np.ndarray) -> bool:
    """Visibly another picture, not the same one lit otherwise (a night shot's own picture,
    undimmed, is the same shot with the lights on, not a cut)."""
    a, b = first.astype(np.float32), last.astype(np.float32)
    lit_alike = b * (a.mean() / max(float(b.mean()), 1.0))
    return float(np.abs(a - b).mean()) > 35 and float(np.abs(a - lit_alike).mean()) > 25


def _with_plain_cut(rng, bank, made: Made) -> Made:
    """Append a plain hard cut to a shot of another clip, so every clip has a boundary."""
    for _ in range(30):  # another shot, visibly so
        _, other = bank.pick(rng, int(rng.integers(20, 30)))
        if _another_picture(other[0], made.frames[-1]):
            break
    at = len(made.frames)
    return Made([*made.frames, *other], [*made.hard, at], made.gradual, made.dropped)


def _write(path: Path, frames: list[np.ndarray], times: list[Fraction], fmt: Format, size, rate):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(fmt.codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = fmt.pix_fmt
        stream.options = dict(fmt.options)
        time_base = Fraction(1, 90_000) if fmt.container in TIMED_CONTAINERS else None
        if time_base is not None:  # frame times at their own precision, not the rate's ticks
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        for frame, t in zip(frames, times, strict=True):
            picture = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            video_frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if time_base is not None:
                video_frame.pts = round(t / time_base)
                video_frame.time_base = time_base
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_clip(folder: Path, bank: ShotBank, category: str, number: int, seed: int) -> CorpusClip:
    kind = list(CATEGORIES).index(category)
    rng = np.random.default_rng([seed, number, kind])
    maker, _ = CATEGORIES[category]
    made = _with_plain_cut(rng, bank, maker(rng, bank))
    fmt = FORMAT_OF.get(category, FORMATS[number % len(FORMATS)])
    size = SIZES[(number + kind) % len(SIZES)]
    rate = RATES[(number + 2 * kind) % len(RATES)]
    variable = fmt.container in ("mp4", "mkv") and number % 3 == 0
    step = Fraction(rate).limit_denominator(1001)
    times, t = [], Fraction(0)
    dropped = set(made.dropped)
    source_index = 0
    timed = fmt.container in TIMED_CONTAINERS
    for number_in_clip in range(len(made.frames)):
        if not timed:  # the container numbers frames: a dropped frame leaves no gap
            times.append(number_in_clip / step)
            continue
        while source_index in dropped:  # frames that were dropped leave their time empty
            t += 1 / step
            source_index += 1
        times.append(t)
        jitter = Fraction(int(rng.integers(-25, 50)), 100) if variable else 0
        t += (1 / step) * (1 + jitter)
        source_index += 1
    path = folder / f"{category}-{number:03d}.{fmt.container}"
    _write(path, made.frames, times, fmt, size, step)
    boundaries = [Boundary(float(times[i])) for i in made.hard]
    for first, last in made.gradual:
        middle = (float(times[first]) + float(times[last])) / 2
        boundaries.append(Boundary(middle, (float(times[first]), float(times[last]))))
    return CorpusClip(
        path=str(path),
        category=category,
        boundaries=sorted(boundaries, key=lambda b: b.time_s),
        codec=fmt.codec,
        fps=float(step),
        variable_fps=variable,
        size=size,
        pix_fmt=fmt.pix_fmt,
        frames=len(made.frames),
        seed=seed,
        split="tune" if number % 2 == 0 else "held_out",
    )


def build_corpus(
    folder: Path, sample_videos: Path, per_category: int = 20, seed: int = 0
) -> list[CorpusClip]:
    """`per_category` clips of every category (half to tune on, half held out), under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    bank = ShotBank(sample_videos)
    return [
        make_clip(folder, bank, category, number, seed)
        for category in CATEGORIES
        for number in range(per_category)
    ]
