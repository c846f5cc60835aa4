"""Spoken clips made on the spot (never checked in): espeak-ng sentences laid at known times
over still pictures with hard cuts, optionally with noise or a hum under them. Used by the
speech tests and by `benchmarks/speech.py`; the truth (what is said, when, which scene) comes
back with each clip.

    python -m benchmarks.speech_corpus OUT_FOLDER  # writes a few clips and their truth.json
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import numpy as np

RATE = 16_000
FPS = 10
SIZE = (160, 120)


@dataclass(frozen=True)
class Utterance:
    text: str
    at_s: float
    voice: str = "en-us"
    speed: int = 150


@dataclass
class SpokenClip:
    path: str
    duration_s: float
    cuts_s: list[float]
    noise: str
    utterances: list[dict] = field(default_factory=list)  # with start_s and end_s as placed


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", speed: int = 150) -> np.ndarray:
    """espeak-ng's rendering of `text`, as 16 kHz float32 samples."""
    if not espeak_available():
        raise RuntimeError("espeak-ng is not installed: run scripts/ensure-espeak (apt-get)")
    result = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    )
    with wave.open(io.BytesIO(result.stdout)) as sound:
        rate = sound.getframerate()
        data = np.frombuffer(sound.readframes(sound.getnframes()), np.int16).astype(np.float32)
    data /= 32768.0
    if rate != RATE:  # espeak-ng speaks at 22,050 Hz
        positions = np.arange(0, len(data), rate / RATE)
        data = np.interp(positions, np.arange(len(data)), data).astype(np.float32)
    voiced = np.flatnonzero(np.abs(data) > 0.01)  # trim espeak's own silence
    return data[voiced[0] : voiced[-1] + 1] if voiced.size else data


def pattern_pictures(count: int, seed: int = 0) -> list[np.ndarray]:
    """Distinct pictures, one per shot: a colour and a few shapes each."""
    rng = np.random.default_rng(seed)
    pictures = []
    for number in range(count):
        picture = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        picture[:] = rng.integers(30, 225, 3)
        for _ in range(4):
            x, y = rng.integers(0, SIZE[0] - 40), rng.integers(0, SIZE[1] - 30)
            picture[y : y + 30, x : x + 40] = rng.integers(0, 255, 3)
        picture[(number * 7) % SIZE[1], :] = 255
        pictures.append(picture)
    return pictures


def frames_from(video: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` pictures taken from a real clip, at spread-out times."""
    pictures = []
    with av.open(str(video)) as container:
        frames = [
            f.to_ndarray(format="rgb24", width=SIZE[0], height=SIZE[1])
            for f in container.decode(video=0)
        ]
    rng = np.random.default_rng(seed)
    for index in sorted(rng.choice(len(frames), size=min(count, len(frames)), replace=False)):
        pictures.append(frames[index])
    return pictures


def write_clip(
    path: Path,
    pictures: list[np.ndarray],
    cuts_s: list[float],
    duration_s: float,
    utterances: list[Utterance],
    noise: str = "none",
    seed: int = 0,
    audio: bool = True,
) -> SpokenClip:
    """An MP4 (H.264 + AAC): picture k from cut k-1 to cut k, the utterances at their times,
    over silence, white noise ("noise") or a hum with harmonics ("music")."""
    rng = np.random.default_rng(seed)
    samples = np.zeros(int(duration_s * RATE), np.float32)
    placed = []
    for utterance in utterances:
        voice = speak(utterance.text, utterance.voice, utterance.speed) * 0.8
        start = int(utterance.at_s * RATE)
        end = min(len(samples), start + len(voice))
        samples[start:end] += voice[: end - start]
        placed.append({**asdict(utterance), "start_s": start / RATE, "end_s": end / RATE})
    t = np.arange(len(samples)) / RATE
    if noise == "noise":
        samples += rng.normal(0, 0.03, len(samples)).astype(np.float32)
    elif noise == "music":
        tone = sum(np.sin(2 * np.pi * f * t) / (n + 1) for n, f in enumerate((220, 277, 330)))
        samples += (0.05 * tone * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    samples = np.clip(samples, -1, 1)
    bounds = [0.0, *cuts_s, duration_s]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        video.options = {"preset": "ultrafast", "g": str(FPS)}
        sound = container.add_stream("aac", rate=RATE) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(round(duration_s * FPS)):
            now = index / FPS
            shot = max(k for k in range(len(bounds) - 1) if bounds[k] <= now + 1e-9)
            picture = pictures[shot % len(pictures)].astype(np.int16)
            jitter = rng.integers(-3, 4, picture.shape, dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(
                np.clip(picture + jitter, 0, 255).astype(np.uint8), format="rgb24"
            )
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            pcm = (samples * 32767).astype(np.int16)
            step = 1024
            for start in range(0, len(pcm), step):
                chunk = pcm[start : start + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
                frame.sample_rate = RATE
                frame.pts = start
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return SpokenClip(str(path), duration_s, list(cuts_s), noise, placed)


def break_audio(source: Path, target: Path, seed: int = 0) -> None:
    """A copy of `source` whose audio packets are random bytes (the pictures intact)."""
    rng = np.random.default_rng(seed)
    with av.open(str(source)) as inp, av.open(str(target), "w", format="matroska") as out:
        video_in, audio_in = inp.streams.video[0], inp.streams.audio[0]
        video_out = out.add_stream_from_template(video_in)
        audio_out = out.add_stream_from_template(audio_in)
        for packet in inp.demux(video_in, audio_in):
            if packet.dts is None:
                continue
            if packet.stream is audio_in:
                broken = av.Packet(rng.bytes(max(packet.size, 16)))
                broken.pts, broken.dts, broken.time_base = packet.pts, packet.dts, packet.time_base
                broken.stream = audio_out
                out.mux(broken)
            else:
                packet.stream = video_out
                out.mux(packet)


def demo_clips(folder: Path) -> list[SpokenClip]:
    """A handful of clips: two voices, a cut through a sentence, noise, music, no audio."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures = pattern_pictures(6)
    clips = [
        write_clip(
            folder / "interview.mp4",
            pictures[:3],
            [3.0, 6.0],
            8.0,
            [
                Utterance("the lighthouse keeper counted seven ships", 0.5),
                Utterance("bring the purple umbrella tomorrow", 6.4, "en-us+f3", 140),
            ],
        ),
        write_clip(
            folder / "noisy.mp4",
            pictures[3:5],
            [4.0],
            7.0,
            [Utterance("the orchestra played a quiet waltz", 1.0, "en-us", 160)],
            noise="noise",
            seed=1,
        ),
    ]
    return clips


if __name__ == "__main__":
    made = demo_clips(Path(sys.argv[1]))
    (Path(sys.argv[1]) / "truth.json").write_text(json.dumps([asdict(c) for c in made], indent=2))
    print("\n".join(c.path for c in made))
