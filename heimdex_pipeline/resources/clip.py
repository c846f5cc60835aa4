"""CLIP image and text encoders through open_clip, loaded once per process."""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

RANDOM_WEIGHTS = "random"


class ClipLoadError(RuntimeError):
    """The configured model or weights could not be loaded."""


@dataclass(frozen=True)
class ModelIdentity:
    """What made a vector: recorded beside every vector we store."""

    model: str
    pretrained: str
    dim: int
    weights_sha256: str

    @property
    def is_random(self) -> bool:
        return self.pretrained == RANDOM_WEIGHTS

    @property
    def model_id(self) -> str:
        """A short stable id, also used to name the vector table of this model."""
        base = re.sub(r"[^a-z0-9]+", "_", Path(self.model).stem.lower()).strip("_")
        return f"{base}_{self.dim}_{self.weights_sha256[:12]}"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "model_id": self.model_id, "random_weights": self.is_random}


class ClipEncoder:
    """A loaded open_clip model: batched, L2-normalised image and text embeddings."""

    def __init__(self, model, preprocess, tokenizer, identity: ModelIdentity, device: str):
        self._model = model
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self.identity = identity
        self.device = device

    def encode_images(self, images: Sequence[Image.Image], batch_size: int = 32) -> np.ndarray:
        """One unit vector per image, float32."""
        import torch

        out = []
        for start in range(0, len(images), batch_size):
            batch = torch.stack([self._preprocess(im) for im in images[start : start + batch_size]])
            with torch.inference_mode():
                features = self._model.encode_image(batch.to(self.device))
            out.append(features.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.identity.dim), np.float32)
        return normalise(np.concatenate(out))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, float32."""
        import torch

        with torch.inference_mode():
            features = self._model.encode_text(self._tokenizer(list(texts)).to(self.device))
        return normalise(features.float().cpu().numpy())


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _weights_hash(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _register_config(model: str) -> str:
    """A model given as a path to an open_clip JSON config is registered; its name is the stem."""
    import open_clip

    if model.endswith(".json"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise ClipLoadError(f"HEIMDEX_CLIP_MODEL={model!r}: no such model config file")
        open_clip.add_model_config(path)
        return path.stem
    return model


def _looks_like_a_path(value: str) -> bool:
    return "/" in value or value.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))


def load_clip(model: str, pretrained: str, device: str | None = None) -> ClipEncoder:
    """Load open_clip `model` with weights `pretrained` (a tag, a checkpoint file, `local-dir:`,
    or `random`); raise ClipLoadError naming the two settings when that fails."""
    import open_clip
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        name = _register_config(model)
        if pretrained.startswith("local-dir:"):
            net, _, preprocess = open_clip.create_model_and_transforms(pretrained, device=device)
            tokenizer = open_clip.get_tokenizer(pretrained)
        else:
            weights = None if pretrained == RANDOM_WEIGHTS else pretrained
            if weights is None:
                torch.manual_seed(0)  # the same "random" model in every process
            if weights is not None and _looks_like_a_path(weights):
                if not Path(weights).expanduser().is_file():
                    raise FileNotFoundError(f"no checkpoint file at {weights}")
                weights = str(Path(weights).expanduser())
            net, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=weights, device=device
            )
            tokenizer = open_clip.get_tokenizer(name)
    except ClipLoadError:
        raise
    except Exception as error:
        raise ClipLoadError(
            f"could not load CLIP model HEIMDEX_CLIP_MODEL={model!r} with weights "
            f"HEIMDEX_CLIP_PRETRAINED={pretrained!r}: {type(error).__name__}: {error}. "
            "Set HEIMDEX_CLIP_PRETRAINED to a local checkpoint file or a local-dir: folder "
            "(weights cannot be downloaded here), or to 'random' for a smoke test."
        ) from error
    net.eval()
    with torch.inference_mode():
        dim = int(net.encode_text(tokenizer(["probe"]).to(device)).shape[-1])
    identity = ModelIdentity(
        model=model, pretrained=pretrained, dim=dim, weights_sha256=_weights_hash(net)
    )
    return ClipEncoder(net, preprocess, tokenizer, identity, device)


_LOADED: dict[tuple[str, str], ClipEncoder] = {}
_LOCK = threading.Lock()


def shared_clip(model: str, pretrained: str) -> ClipEncoder:
    """The process's one encoder for (model, pretrained): loaded on first use."""
    with _LOCK:
        key = (model, pretrained)
        if key not in _LOADED:
            _LOADED[key] = load_clip(model, pretrained)
        return _LOADED[key]
