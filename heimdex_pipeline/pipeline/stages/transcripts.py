"""transcripts: what is said in each scene, from the video's audio (its pictures are never
decoded again).

It reads `scenes` so that its lines can be assigned to them (a sentence across a cut is split at
the cut by its words); it runs beside the picture stages, not after them, and its failure never
fails the video. The audio is decoded and transcribed in the run's speech worker process; the
lines of every video of the batch go to the model's table in one commit, then the catalog says
which transcripts exist (search reads only what the catalog names).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa

from heimdex_pipeline.catalog.videos import (
    activate_complete_models,
    get_video,
    mark_transcripts_failed,
    record_transcript,
    scenes_of,
)
from heimdex_pipeline.pipeline.stages.base import (
    STAGE_RESOURCES,
    Outcome,
    Stage,
    StageContext,
    StageResult,
    check_committed,
    prepare_each,
)
from heimdex_pipeline.speech.model import AsrModelSpec
from heimdex_pipeline.speech.transcript import (
    Line,
    SceneSpan,
    Transcript,
    lines_by_scene,
    transcript_document,
)
from heimdex_pipeline.speech.worker import AsrWorker
from heimdex_pipeline.stores import Stores
from heimdex_pipeline.stores.keys import source_key, transcript_key
from heimdex_pipeline.stores.transcripts import (
    lines_per_video,
    replace_lines_of_videos,
    transcripts_schema,
    transcripts_table,
    transcripts_table_name,
)


@dataclass
class _Heard:
    transcript: Transcript
    lines: list[Line]
    rows: list[dict[str, object]]
    seconds: float


def _rows(
    video_id: str,
    owner: str,
    lines: list[Line],
    scenes: dict[str, SceneSpan],
    language,
    model_id: str,
) -> list[dict]:
    """The table rows of a video's lines."""
    return [
        {
            "line_id": line.line_id,
            "video_id": video_id,
            "owner": owner,
            "scene_id": line.scene_id,
            "scene_index": line.scene_index,
            "scene_start_s": scenes[line.scene_id].start_s,
            "scene_end_s": scenes[line.scene_id].end_s,
            "segment_index": line.segment_index,
            "start_s": line.start_s,
            "end_s": line.end_s,
            "text": line.sentence or line.text,
            "line_text": line.text,
            "words": line.words_json(),
            "language": language,
            "model_id": model_id,
        }
        for line in lines
    ]


def _hear(context: StageContext, worker: AsrWorker, video_id: str) -> _Heard:
    """Transcribe one video's audio and assign its lines to its scenes."""
    started = time.perf_counter()
    stores, spec = context.stores, worker.spec
    with stores.catalog.session() as session:
        video = get_video(session, video_id)
        key = source_key(stores.objects, video_id, video.source_uri)
        owner = video.owner
        scenes = {
            row.id: SceneSpan(row.id, row.index, row.start_s, row.end_s)
            for row in scenes_of(session, video_id)
        }
    if not scenes:
        raise RuntimeError("the video has no scenes: run `scenes` first")
    with stores.objects.local_path(key) as path:
        transcript = worker.transcribe(str(path))
    lines = lines_by_scene(transcript.segments, list(scenes.values()))
    rows = _rows(video_id, owner, lines, scenes, transcript.language, spec.model_id)
    document = transcript_document(transcript, spec.model_id, lines)
    stores.objects.put_bytes(
        transcript_key(video_id, spec.model_id),
        json.dumps(document, indent=1).encode(),
        "application/json",
    )
    return _Heard(transcript, lines, rows, time.perf_counter() - started)


def _record(stores: Stores, video_id: str, spec: AsrModelSpec, heard: _Heard) -> list[str]:
    transcript = heard.transcript
    with stores.catalog.session() as session:
        record_transcript(
            session,
            video_id,
            spec.model_id,
            spec.setting,
            status=transcript.status,
            reason=transcript.reason,
            language=transcript.language,
            audio_s=round(transcript.audio_s, 3),
            speech_s=round(transcript.speech_s, 3),
            word_count=transcript.word_count,
            line_count=len(heard.lines),
            real_time_factor=transcript.real_time_factor,
        )
        return activate_complete_models(session)


def _metadata(spec: AsrModelSpec, heard: _Heard, activated: list[str], shared_s: float) -> dict:
    transcript = heard.transcript
    return {
        "status": transcript.status,
        "transcript": transcript.label,
        "language": transcript.language or "",
        "model_id": spec.model_id,
        "model": spec.setting,
        "table": transcripts_table_name(spec.model_id),
        "audio_s": dg.MetadataValue.float(round(transcript.audio_s, 3)),
        "speech_s": dg.MetadataValue.float(round(transcript.speech_s, 3)),
        "words": transcript.word_count,
        "segments": len(transcript.segments),
        "lines": len(heard.lines),
        "real_time_factor": dg.MetadataValue.float(transcript.real_time_factor or 0.0),
        "speech_model_activated": spec.model_id in activated,
        "seconds": dg.MetadataValue.float(round(heard.seconds + shared_s, 3)),
    }


def transcribe_videos(context: StageContext, video_ids: list[str]) -> Iterator[tuple[str, Outcome]]:
    """Transcribe each video, then write the batch's lines in one commit and record them."""
    asr = context.asr
    if asr is None or asr.off:
        for video_id in video_ids:
            yield video_id, StageResult(metadata={"status": "off", "model": "off"})
        return
    worker = asr.worker()
    try:
        heard, errors = prepare_each(video_ids, lambda v: _hear(context, worker, v))
    finally:
        worker.release()
    yield from errors
    if not heard:
        return
    spec = worker.spec
    started = time.perf_counter()
    members = list(heard)
    try:
        table = transcripts_table(context.stores.vectors, spec.model_id)
        rows = [row for v in members for row in heard[v].rows]
        replace_lines_of_videos(
            table, members, pa.Table.from_pylist(rows, schema=transcripts_schema())
        )
        stored = lines_per_video(table, members)
    except Exception as error:  # the commit is all or nothing: so is the outcome
        for video_id in members:
            yield video_id, error
        return
    shared = (time.perf_counter() - started) / len(members)
    for video_id in members:
        try:
            table_of = transcripts_table_name(spec.model_id)
            check_committed(table_of, stored, video_id, len(heard[video_id].lines), "lines")
            activated = _record(context.stores, video_id, spec, heard[video_id])
        except Exception as error:
            yield video_id, error
            continue
        yield video_id, StageResult(metadata=_metadata(spec, heard[video_id], activated, shared))


def record_failure(video_id: str, stores: Stores, reason: str) -> None:
    """A transcript that could not be made says so on the video's transcript rows (the
    partition's failure in Dagster says it too)."""
    with stores.catalog.session() as session:
        mark_transcripts_failed(session, video_id, reason[:2000])


TRANSCRIPTS = Stage(
    reads=("scenes",),
    asset="transcripts",
    work=transcribe_videos,
    description="What is said, from the audio alone: voice-activity detection, then Whisper "
    "(HEIMDEX_ASR_MODEL, faster-whisper) with word times; lines assigned to the scenes they "
    "are said in, in the speech model's full-text table. No audio, no speech or an unreadable "
    "track is the transcript's status; a failure here never fails the video.",
    group="speech",
    kinds=frozenset({"python", "lancedb"}),
    resources=frozenset(STAGE_RESOURCES | {"asr"}),
    pool="asr",
    fails_video=False,
    on_failure=record_failure,
)
