"""CLIP image and text encoders through open_clip, loaded once per process."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
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
        """One unit vector per text, float32. CLIP's own text tower runs on the tokens the texts
        have, not on the 77 its tokenizer pads them to (see `_encode_trimmed`)."""
        import torch

        tokens = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            if _trimmable(self._model):
                features = _encode_trimmed(self._model, tokens)
            else:
                features = self._model.encode_text(tokens)
        return normalise(features.float().cpu().numpy())


def _trimmable(model) -> bool:
    """Whether the model is open_clip's CLIP with a causal text tower pooled at its end token:
    then the padding after the longest text of a batch changes nothing the pooled features
    see, and can be left out."""
    needed = ("token_embedding", "positional_embedding", "transformer", "ln_final", "attn_mask")
    return (
        all(getattr(model, name, None) is not None for name in needed)
        and getattr(model, "text_pool_type", None) == "argmax"
    )


def _encode_trimmed(model, tokens):
    """open_clip's `CLIP.encode_text` on the tokens up to the batch's longest text: with a
    causal mask each position sees only the ones before it, and the features are taken at the
    end token, so the 77 - n padding positions are work whose result is thrown away. A short
    query runs on about 8 positions instead of 77 (the features are checked
    against `encode_text`'s in test_serve_team.py)."""
    import torch
    from open_clip.transformer import text_global_pool

    length = int((tokens != 0).nonzero()[:, 1].max()) + 1 if tokens.any() else tokens.shape[1]
    tokens = tokens[:, :length]
    cast = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast) + model.positional_embedding[:length].to(cast)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = text_global_pool(model.ln_final(x), tokens, model.text_pool_type)
    projection = model.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)


def _state_dict_sha256(model) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _hash_cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "heimdex" / "weights-sha256.json"


def _weights_cache_key(model: str, pretrained: str) -> str | None:
    """What identifies these weights without reading them; None when nothing does."""
    import torch

    if pretrained == RANDOM_WEIGHTS:  # seeded: the same for a model and a torch version
        return f"random|{model}|{torch.__version__}"
    if pretrained.startswith("local-dir:") or _looks_like_a_path(pretrained):
        path = Path(pretrained.removeprefix("local-dir:")).expanduser().resolve()
        files = sorted(path.iterdir()) if path.is_dir() else [path]
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.is_file()]
        return f"file|{model}|{stats}"
    return f"tag|{model}|{pretrained}"  # a published tag names immutable weights


def weights_sha256(net, model: str, pretrained: str) -> str:
    """The SHA-256 of the model's weights; remembered across processes (hashing ViT-B-32 takes
    about a second and a half), keyed by the checkpoint's path, size and mtime or by the tag."""
    key = _weights_cache_key(model, pretrained)
    cache_file = _hash_cache_file()
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    if key is not None and isinstance(known.get(key), str):
        return known[key]
    digest = _state_dict_sha256(net)
    if key is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({**known, key: digest}))
            temporary.replace(cache_file)
        except OSError:
            pass  # a read-only home only costs the hashing next time
    return digest


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


def cpu_threads() -> int:
    """Threads for torch on the CPU: `OMP_NUM_THREADS` when set (a replica's share of a larger
    machine), else every core."""
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, os.cpu_count() or 1)


def load_clip(model: str, pretrained: str, device: str | None = None) -> ClipEncoder:
    """Load open_clip `model` with weights `pretrained` (a tag, a checkpoint file, `local-dir:`,
    or `random`); raise ClipLoadError naming the two settings when that fails."""
    import open_clip
    import torch

    check_weights(model, pretrained)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(cpu_threads())
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
        model=model,
        pretrained=pretrained,
        dim=dim,
        weights_sha256=weights_sha256(net, model, pretrained),
    )
    return ClipEncoder(net, preprocess, tokenizer, identity, device)


def _reachable(host: str, port: int = 443, timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def _cached_tag_weights(name: str, pretrained: str) -> tuple[bool, str]:
    """Whether a weights tag is already on disk, and the host a download would need."""
    import open_clip
    from open_clip import pretrained as registry

    cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
        raise ClipLoadError(
            f"HEIMDEX_CLIP_PRETRAINED={pretrained!r} is not a weights tag of "
            f"HEIMDEX_CLIP_MODEL={name!r} (its tags: {tags}); or give a checkpoint file, "
            "a local-dir: folder, or 'random'"
        )
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        names = (
            [filename] if filename else [registry.HF_WEIGHTS_NAME, registry.HF_SAFE_WEIGHTS_NAME]
        )
        cached = any(isinstance(try_to_load_from_cache(repo, n), str) for n in names)
        return cached, "huggingface.co"
    url = cfg.get("url", "")
    cached = (Path.home() / ".cache" / "clip" / os.path.basename(url)).is_file()
    return cached, re.sub(r"^https?://([^/]+)/.*$", r"\1", url)


def is_weights_tag(pretrained: str) -> bool:
    """A published weights tag (resolved through open_clip's registry), not a file or folder."""
    return not (
        pretrained == RANDOM_WEIGHTS
        or pretrained.startswith("local-dir:")
        or _looks_like_a_path(pretrained)
    )


def check_weights(model: str, pretrained: str) -> None:
    """Fail fast, naming the settings, when the weights cannot be had: a missing file or folder,
    an unknown model or tag, or a tag that is not downloaded while its host is unreachable.
    Costs the open_clip import and at most one connection attempt; loads nothing."""
    if pretrained == RANDOM_WEIGHTS:
        return
    fix = (
        "Set HEIMDEX_CLIP_PRETRAINED to a local checkpoint file or a local-dir: folder (weights "
        "cannot be downloaded here), or to 'random' for a smoke test."
    )
    if pretrained.startswith("local-dir:"):
        folder = Path(pretrained.removeprefix("local-dir:")).expanduser()
        if not (folder / "open_clip_config.json").is_file():
            raise ClipLoadError(
                f"HEIMDEX_CLIP_PRETRAINED={pretrained!r}: no open_clip_config.json in {folder}"
            )
        return
    if _looks_like_a_path(pretrained):
        if not Path(pretrained).expanduser().is_file():
            raise ClipLoadError(
                f"could not load CLIP model HEIMDEX_CLIP_MODEL={model!r} with weights "
                f"HEIMDEX_CLIP_PRETRAINED={pretrained!r}: no checkpoint file there. {fix}"
            )
        return
    import open_clip

    name = _register_config(model)
    if name not in open_clip.list_models():
        raise ClipLoadError(f"HEIMDEX_CLIP_MODEL={model!r} is not an open_clip model")
    cached, host = _cached_tag_weights(name, pretrained)
    if not cached and (os.environ.get("HF_HUB_OFFLINE") == "1" or not _reachable(host)):
        raise ClipLoadError(
            f"could not load CLIP model HEIMDEX_CLIP_MODEL={model!r} with weights "
            f"HEIMDEX_CLIP_PRETRAINED={pretrained!r}: they are not downloaded and {host} cannot "
            f"be reached. {fix}"
        )


_LOADED: dict[tuple[str, str], ClipEncoder] = {}
_LOCK = threading.Lock()


def shared_clip(model: str, pretrained: str) -> ClipEncoder:
    """The process's one encoder for (model, pretrained): loaded on first use."""
    with _LOCK:
        key = (model, pretrained)
        if key not in _LOADED:
            _LOADED[key] = load_clip(model, pretrained)
        return _LOADED[key]


def preload(model: str, pretrained: str) -> threading.Thread:
    """Start loading the shared encoder in the background (torch's import and the weights take
    seconds that the media work can hide); `shared_clip` then waits for it. A failure is left for
    `shared_clip` to raise again."""

    def load() -> None:
        with contextlib.suppress(Exception):
            shared_clip(model, pretrained)

    thread = threading.Thread(target=load, name="clip-preload", daemon=True)
    thread.start()
    return thread
