"""Choose and encode a scene's thumbnail and the frames its embedding is made from."""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from heimdex_pipeline.media.detect import SceneSpan
from heimdex_pipeline.media.frames import FrameSample, SampleSettings, sample_size

EMBED_FRACTIONS = (0.25, 0.5, 0.75)


def samples_in(samples: Sequence[FrameSample], span: SceneSpan) -> list[FrameSample]:
    """The samples inside a scene; if it has none, the one nearest its middle."""
    inside = [s for s in samples if span.start_s <= s.time_s < span.end_s]
    if inside or not samples:
        return inside
    middle = (span.start_s + span.end_s) / 2
    return [min(samples, key=lambda s: abs(s.time_s - middle))]


def pick_representative(samples: Sequence[FrameSample], span: SceneSpan) -> FrameSample:
    """The sharpest non-blank frame in the middle half of the scene, else the best one near it."""
    candidates = samples_in(samples, span)
    if not candidates:
        raise ValueError(f"no frame kept for scene {span.index}")
    middle = (span.start_s + span.end_s) / 2
    quarter = span.duration_s / 4
    usable = [s for s in candidates if not s.looks_blank]
    central = [s for s in usable if abs(s.time_s - middle) <= quarter]
    if central:
        return max(central, key=lambda s: s.sharpness)
    pool = usable or candidates
    return min(pool, key=lambda s: abs(s.time_s - middle))


def pick_embedding_frames(
    samples: Sequence[FrameSample], span: SceneSpan, fractions: Sequence[float] = EMBED_FRACTIONS
) -> list[FrameSample]:
    """The kept frames nearest to each fraction of the scene (25/50/75 % by default)."""
    candidates = samples_in(samples, span)
    if not candidates:
        raise ValueError(f"no frame kept for scene {span.index}")
    targets = [span.start_s + f * span.duration_s for f in fractions]
    return [min(candidates, key=lambda s, t=t: abs(s.time_s - t)) for t in targets]


def needed_samples(samples: Sequence[FrameSample], spans: Sequence[SceneSpan]) -> list[FrameSample]:
    """The samples the picks above choose for these scenes, in time order.

    Picking from only these gives the same thumbnails and embedding frames as picking from all.
    """
    if not samples:
        return []
    chosen = {}
    for span in spans:
        for sample in [pick_representative(samples, span), *pick_embedding_frames(samples, span)]:
            chosen[id(sample)] = sample
    return sorted(chosen.values(), key=lambda s: s.time_s)


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Scale (w, h) so its longer side is long_side (never upscaling)."""
    width, height = size
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_short_side(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    """Scale (w, h) so its shorter side is short_side (never upscaling)."""
    width, height = size
    scale = min(1.0, short_side / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode(image: Image.Image, size: tuple[int, int], fmt: str, quality: int = 85) -> bytes:
    """Shrink (area averaging, as the decoder's scaling: half bicubic's time) and encode (WebP
    at method 2: half the default's time)."""
    if image.size != size:
        image = image.resize(size, Image.Resampling.BOX)
    buffer = io.BytesIO()
    options = {"method": 2} if fmt == "WEBP" else {}
    image.save(buffer, format=fmt, quality=quality, **options)
    return buffer.getvalue()


@dataclass(frozen=True)
class ScenePictures:
    thumbnail_webp: bytes  # upright, display aspect, long side fitted
    embedder_jpegs: list[bytes]  # one per fraction, short side fitted


def scene_pictures(
    samples: Sequence[FrameSample], span: SceneSpan, long_side: int, short_side: int
) -> ScenePictures:
    """A scene's thumbnail and the embedder's frames; each kept frame is decoded at most once."""
    image = functools.cache(FrameSample.image)

    @functools.cache
    def embedder_jpeg(sample: FrameSample) -> bytes:
        picture = image(sample)
        return encode(picture, fit_short_side(picture.size, short_side), "JPEG", 90)

    thumbnail = image(pick_representative(samples, span))
    return ScenePictures(
        thumbnail_webp=encode(thumbnail, fit_long_side(thumbnail.size, long_side), "WEBP", 80),
        embedder_jpegs=[embedder_jpeg(s) for s in pick_embedding_frames(samples, span)],
    )


def contact_sheet_markdown(
    thumbnails: Sequence[tuple[str, bytes]], per_row: int = 6, width: int = 120, limit: int = 36
) -> str:
    """A markdown grid of small inline thumbnails, captioned, for the Dagster UI."""
    cells = []
    for caption, webp in list(thumbnails)[:limit]:
        image = Image.open(io.BytesIO(webp)).convert("RGB")
        image.thumbnail((width, width))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=70)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        cells.append(f"![{caption}](data:image/jpeg;base64,{data})<br>{caption}")
    if not cells:
        return "_no scenes_"
    rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    columns = min(per_row, len(cells))
    lines = ["| " + " | ".join([" "] * columns) + " |", "|" + "---|" * columns]
    lines += ["| " + " | ".join(row + [" "] * (columns - len(row))) + " |" for row in rows]
    more = len(thumbnails) - limit
    if more > 0:
        lines.append(f"\n… and {more} more scenes")
    return "\n".join(lines)


def expected_thumbnail_size(
    width: int, height: int, display_aspect: float, rotation: int, settings: SampleSettings
) -> tuple[int, int]:
    """The size every thumbnail of this video has: display aspect, upright, long side fitted."""
    kept_w, kept_h = sample_size(width, height, display_aspect, settings)
    if rotation % 180 == 90:
        kept_w, kept_h = kept_h, kept_w
    return fit_long_side((kept_w, kept_h), settings.long_side)
