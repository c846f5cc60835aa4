"""The faces of a scene, from the frames the media pass kept: a few frames spread over the
scene, every face found in them, sightings of one face in several frames merged into one (the
first time it is seen, the biggest box), and a small WebP crop of each."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from heimdex_pipeline.faces.model import Box, FaceModel, distance

CROP_SIDE = 112  # px: the crop a page shows
CROP_MARGIN = 0.25  # of the box, on each side


@dataclass(frozen=True)
class Frame:
    time_s: float
    jpeg: bytes


@dataclass
class SceneFace:
    """One face seen in a scene."""

    time_s: float  # when it is first seen
    box: Box  # in the frame it was best seen in
    frame_size: tuple[int, int]  # that frame's width, height
    descriptor: np.ndarray
    sightings: int
    crop_webp: bytes


def spread(frames: Sequence[Frame], count: int) -> list[Frame]:
    """At most `count` frames, evenly over the scene (first and last included)."""
    if len(frames) <= count:
        return list(frames)
    if count == 1:
        return [frames[len(frames) // 2]]
    step = (len(frames) - 1) / (count - 1)
    return [frames[round(i * step)] for i in range(count)]


def crop_of(image: Image.Image, box: Box) -> bytes:
    """The face with a margin, squared, at CROP_SIDE px, as WebP."""
    side = max(box.w, box.h) * (1 + 2 * CROP_MARGIN)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    left, top = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    right = min(image.width, round(cx + side / 2))
    bottom = min(image.height, round(cy + side / 2))
    face = image.crop((left, top, right, bottom))
    face.thumbnail((CROP_SIDE, CROP_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    face.save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()


def scan_scene(model: FaceModel, frames: Sequence[Frame]) -> tuple[list[SceneFace], int]:
    """The faces of one scene, and how many frames were scanned."""
    chosen = spread(frames, model.settings.frames_per_scene)
    faces: list[SceneFace] = []
    for frame in chosen:
        image = Image.open(io.BytesIO(frame.jpeg)).convert("RGB")
        for found in model.find(np.asarray(image)):
            same = _same_face(faces, found.descriptor, model.settings.same_face_distance)
            if same is None:
                faces.append(
                    SceneFace(
                        time_s=frame.time_s,
                        box=found.box,
                        frame_size=image.size,
                        descriptor=found.descriptor,
                        sightings=1,
                        crop_webp=crop_of(image, found.box),
                    )
                )
                continue
            same.sightings += 1
            if found.box.w * found.box.h > same.box.w * same.box.h:  # a better view of it
                same.box, same.frame_size = found.box, image.size
                same.descriptor = found.descriptor
                same.crop_webp = crop_of(image, found.box)
    return faces, len(chosen)


def _same_face(faces: list[SceneFace], descriptor: np.ndarray, within: float) -> SceneFace | None:
    if not faces:
        return None
    gaps = distance(np.stack([face.descriptor for face in faces]), descriptor)
    nearest = int(np.argmin(gaps))
    return faces[nearest] if gaps[nearest] < within else None
