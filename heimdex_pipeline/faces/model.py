"""dlib's trained face models, as `face_recognition_models` ships them: the HOG detector, the
5-point shape predictor and the ResNet that maps an aligned face to 128 numbers (two photos of
one person are usually under 0.6 apart in Euclidean distance, two people over it).

Pure model code: RGB arrays in, boxes and descriptors out. No store, no Dagster.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MODEL_ID = "dlib_resnet_v1"  # names the `faces_<model id>` table; new weights get a new id
DIM = 128
PACKAGE = "face_recognition_models"
_FILES = {
    "shape": "shape_predictor_5_face_landmarks.dat",
    "encoder": "dlib_face_recognition_resnet_model_v1.dat",
}


class FaceModelError(RuntimeError):
    """The face models cannot be loaded (a package missing, a file unreadable)."""


@dataclass(frozen=True)
class FaceSettings:
    """How faces are looked for: faces whose box (brows to chin, as dlib draws it; a head is
    taller) is under `min_size_px` are left out; `upsample` doubles the frame that many times
    before detection (HOG's window is 80 px: one doubling finds boxes from about 37 px in a
    kept frame, so a 40 px head)."""

    min_size_px: int = 32
    upsample: int = 1
    frames_per_scene: int = 3
    same_face_distance: float = 0.5  # two sightings in one scene closer than this: one face


@dataclass(frozen=True)
class Box:
    """A face's box in the frame's pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    def inside(self, width: int, height: int) -> bool:
        return (
            self.x >= 0 and self.y >= 0 and self.x + self.w <= width and self.y + self.h <= height
        )

    def relative(self, width: int, height: int) -> list[float]:
        """[x, y, w, h] as fractions of the frame, for a page to draw over any size of it."""
        return [
            round(self.x / width, 4),
            round(self.y / height, 4),
            round(self.w / width, 4),
            round(self.h / height, 4),
        ]


@dataclass(frozen=True)
class FoundFace:
    box: Box
    descriptor: np.ndarray  # float32, DIM
    score: float  # the detector's confidence (higher is surer)


def models_dir() -> Path:
    """Where `face_recognition_models` keeps its files, found without importing it (its
    `__init__` needs setuptools' pkg_resources, which a modern venv lacks)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelError(
            f"the face models are not installed: pip install {PACKAGE} dlib-bin "
            "(or set HEIMDEX_FACES=off)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def weights_sha256() -> str:
    """The encoder's weights, so a result says which model made it."""
    digest = hashlib.sha256((models_dir() / _FILES["encoder"]).read_bytes())
    return digest.hexdigest()


class FaceModel:
    """Detector, landmarks and encoder, loaded once; one call at a time (dlib's objects are
    not made for concurrent use)."""

    def __init__(self, settings: FaceSettings | None = None):
        self.settings = settings or FaceSettings()
        try:
            import dlib
        except ImportError as error:
            raise FaceModelError(
                "dlib is not installed: pip install dlib-bin (or set HEIMDEX_FACES=off)"
            ) from error
        folder = models_dir()
        paths = {name: folder / file for name, file in _FILES.items()}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise FaceModelError(f"face model files missing: {', '.join(missing)}")
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(paths["shape"]))
        self._encoder = dlib.face_recognition_model_v1(str(paths["encoder"]))
        self._dlib = dlib
        self._lock = threading.Lock()
        self.model_id = MODEL_ID

    def find(self, rgb: np.ndarray, min_size_px: int | None = None) -> list[FoundFace]:
        """The faces in an RGB uint8 image at least `min_size_px` tall, biggest first."""
        smallest = self.settings.min_size_px if min_size_px is None else min_size_px
        image = np.ascontiguousarray(rgb, dtype=np.uint8)  # dlib refuses strided arrays
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image, got an array of shape {image.shape}")
        height, width = image.shape[:2]
        with self._lock:
            rects, scores, _ = self._detector.run(image, self.settings.upsample, 0.0)
            kept = []
            for rect, score in zip(rects, scores, strict=True):
                box = _clipped(rect, width, height)
                if box is None or box.h < smallest:
                    continue
                kept.append((rect, box, float(score)))
            if not kept:
                return []
            shapes = self._dlib.full_object_detections()
            for rect, _, _ in kept:
                shapes.append(self._shape(image, rect))
            descriptors = self._encoder.compute_face_descriptor(image, shapes)
        found = [
            FoundFace(box, np.asarray(descriptor, dtype=np.float32), score)
            for (_, box, score), descriptor in zip(kept, descriptors, strict=True)
        ]
        return sorted(found, key=lambda face: -face.box.w * face.box.h)


def _clipped(rect, width: int, height: int) -> Box | None:
    """The detector's rectangle inside the frame (it may reach past an edge), or None."""
    left, top = max(0, rect.left()), max(0, rect.top())
    right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
    if right - left < 2 or bottom - top < 2:
        return None
    return Box(left, top, right - left, bottom - top)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between descriptors (rows of `a` against `b`)."""
    return np.linalg.norm(np.atleast_2d(a) - np.asarray(b, dtype=np.float32), axis=1)


@cache
def shared_face_model() -> FaceModel:
    """One model per process (a server answers every face query with it)."""
    return FaceModel()
