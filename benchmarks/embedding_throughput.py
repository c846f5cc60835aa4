"""Real-size ViT-B-32 (random weights: speed only) on this machine: images/s and text latency."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
from _common import machine, save
from PIL import Image

from heimdex_pipeline.clip.model import load_clip


def main(batches: int = 5, batch_size: int = 32) -> None:
    encoder = load_clip("ViT-B-32", "random")
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (224, 398, 3), dtype=np.uint8))
        for _ in range(batch_size)
    ]
    encoder.encode_images(images[:4])  # warm-up
    started = time.perf_counter()
    for _ in range(batches):
        encoder.encode_images(images, batch_size=batch_size)
    seconds = time.perf_counter() - started
    images_per_s = batches * batch_size / seconds
    text_ms = []
    for query in ["a man on a bicycle", "a dog running on a beach", "two people talking"] * 5:
        started = time.perf_counter()
        encoder.encode_texts([query])
        text_ms.append((time.perf_counter() - started) * 1000)
    result = {
        "model": "ViT-B-32 (random weights)",
        "device": encoder.device,
        "torch_threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "images_per_s": images_per_s,
        "text_query_ms_p50": statistics.median(text_ms),
    }
    save("embedding_throughput", result)
    print(f"machine: {machine()}, torch threads {torch.get_num_threads()}, {encoder.device}")
    print(f"  ViT-B-32 images: {images_per_s:.1f} images/s at batch {batch_size}")
    print(f"  one text query: {result['text_query_ms_p50']:.1f} ms (p50)")


if __name__ == "__main__":
    main()
