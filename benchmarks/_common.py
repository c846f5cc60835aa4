"""Shared helpers for the benchmark scripts."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def sample_videos() -> Path:
    folder = Path(os.environ.get("HEIMDEX_SAMPLE_VIDEOS", "../shared/videos"))
    if not (folder / "cuts.json").is_file():
        raise SystemExit(f"{folder}: no cuts.json; set HEIMDEX_SAMPLE_VIDEOS")
    return folder


def clips(folder: Path) -> list[str]:
    return sorted(
        k for k in json.loads((folder / "cuts.json").read_text()) if not k.startswith("_")
    )


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def save(name: str, data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2))
