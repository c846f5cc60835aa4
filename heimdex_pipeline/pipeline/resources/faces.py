"""FacesResource: whether faces are looked for (HEIMDEX_FACES), how, and dlib's models, loaded
in the step that uses them."""

from __future__ import annotations

import dagster as dg
from pydantic import PrivateAttr

from heimdex_pipeline.faces.model import FaceModel, FaceSettings


class FacesResource(dg.ConfigurableResource):
    """dlib's packaged face models (`face_recognition_models`): HOG detection, 5-point
    alignment, the 128-d ResNet encoder. Loaded by the `faces` step (about a second); weights
    that cannot be loaded fail that step's videos' faces, never the run or their other search."""

    enabled: bool = True
    min_size_px: int = 32
    upsample: int = 1
    frames_per_scene: int = 3
    _model: FaceModel | None = PrivateAttr(default=None)

    @property
    def off(self) -> bool:
        return not self.enabled

    def settings(self) -> FaceSettings:
        return FaceSettings(
            min_size_px=self.min_size_px,
            upsample=self.upsample,
            frames_per_scene=self.frames_per_scene,
        )

    def model(self) -> FaceModel:
        if self._model is None:
            self._model = FaceModel(self.settings())
        return self._model
