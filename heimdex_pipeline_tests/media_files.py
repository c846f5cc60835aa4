"""Bad inputs of every kind, made on the spot."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from PIL import Image


def make_bad_inputs(folder: Path, good_video: Path) -> dict[str, Path]:
    """Files that are not decodable videos, each named for what is wrong with it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "empty": folder / "empty.mp4",
        "random_bytes": folder / "random.mp4",
        "text": folder / "notes.mp4",
        "image": folder / "picture.png",
        "truncated": folder / "truncated.webm",
        "audio_only": folder / "sound.m4a",
        "one_frame": folder / "one frame.mp4",
    }
    files["empty"].write_bytes(b"")
    files["random_bytes"].write_bytes(np.random.default_rng(0).bytes(64_000))
    files["text"].write_text("this is not a video\n" * 200)
    Image.new("RGB", (64, 48), "teal").save(files["image"])
    data = good_video.read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    _write_audio_only(files["audio_only"])
    _write_frames(files["one_frame"], count=1)
    return files


def _write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        for _ in range(20):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate = 44100
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_frames(path: Path, count: int, size: tuple[int, int] = (64, 48)) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for index in range(count):
            image = np.full((size[1], size[0], 3), (index * 40) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def copy_with_name(source: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(source.read_bytes())
    os.utime(target)
    return target


def make_long_video(
    path: Path, seconds: float, fps: int = 10, size: tuple[int, int] = (96, 54), seed: int = 7
) -> list[float]:
    """A low-resolution film of `seconds` with a hard cut every 3-10 s (seeded): each shot a
    bright background of its own with a square drifting across it. Answers the cut times."""
    rng = np.random.default_rng(seed)
    width, height = size
    cuts: list[float] = []
    frames = int(seconds * fps)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28"}
        index, colour = 0, rng.integers(60, 256, 3)
        while index < frames:
            length = int(rng.integers(3 * fps, 10 * fps + 1))
            square = rng.integers(40, 256, 3)
            x, y = rng.integers(0, width - 16), rng.integers(0, height - 16)
            dx, dy = rng.choice([-1, 1]), rng.choice([-1, 1])
            for step in range(min(length, frames - index)):
                image = np.empty((height, width, 3), np.uint8)
                image[:] = colour
                sx, sy = (x + dx * step) % (width - 16), (y + dy * step) % (height - 16)
                image[sy : sy + 16, sx : sx + 16] = square
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            index += length
            if index < frames:
                cuts.append(index / fps)
                previous = colour
                while np.abs(colour.astype(int) - previous.astype(int)).sum() < 150:
                    colour = rng.integers(60, 256, 3)
        for packet in stream.encode():
            container.mux(packet)
    return cuts
