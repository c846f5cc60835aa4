"""The plain-script peer of `heimdex index`: the same work with no orchestrator, no catalog.

PySceneDetect's ContentDetector (defaults) on its PyAV backend, `save_images` for one WebP and
three JPEG frames per scene, open_clip ViT-B-32 on each scene's three frames (mean-pooled,
L2-normalised), one LanceDB table. Run as its own process so that its imports count, as they do
for `heimdex index`:

    .venv/bin/python benchmarks/script_peer.py OUT_DIR CLIP...
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

STARTED = time.perf_counter()

import lancedb  # noqa: E402
import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from scenedetect import ContentDetector, SceneManager, open_video, save_images  # noqa: E402


def scenes_and_frames(path: Path, out: Path) -> list[tuple[float, float, list[Path]]]:
    """Shots of one clip, each with its three frames on disk (plus one WebP thumbnail)."""
    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.add_detector(ContentDetector())
    manager.detect_scenes(video)
    scenes = manager.get_scene_list(start_in_scene=True)
    folder = out / path.stem
    save_images(scenes, video, num_images=1, image_extension="webp", output_dir=str(folder))
    frames = save_images(scenes, video, num_images=3, image_extension="jpg", output_dir=str(folder))
    return [
        (start.seconds, end.seconds, [folder / name for name in frames[number]])
        for number, (start, end) in enumerate(scenes)
    ]


def main(out: Path, clips: list[Path]) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    rows = []
    for clip in clips:
        scenes = scenes_and_frames(clip, out)
        images = [preprocess(Image.open(f).convert("RGB")) for _, _, fs in scenes for f in fs]
        with torch.inference_mode():
            vectors = torch.cat(
                [
                    model.encode_image(torch.stack(images[i : i + 32]))
                    for i in range(0, len(images), 32)
                ]
            ).numpy()
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        offset = 0
        for number, (start, end, frames) in enumerate(scenes):
            pooled = vectors[offset : offset + len(frames)].mean(axis=0)
            offset += len(frames)
            rows.append(
                {
                    "scene_id": f"{clip.stem}-{number}",
                    "video": clip.name,
                    "start_s": start,
                    "end_s": end,
                    "vector": (pooled / np.linalg.norm(pooled)).astype(np.float32).tolist(),
                }
            )
    lancedb.connect(str(out / "lancedb")).create_table("scenes", data=rows, mode="overwrite")
    seconds = time.perf_counter() - STARTED
    print(f"{len(clips)} clips, {len(rows)} scenes, {seconds:.2f} s (imports included)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
