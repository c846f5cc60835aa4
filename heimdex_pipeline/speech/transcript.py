"""What was said in a video, and its lines per scene: a segment across a cut is split at the cut
by its words, each part going to the scene it is said in."""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

# Transcript statuses: one of these, whatever happened to the audio (never a failed video).
TRANSCRIBED = "transcribed"
NO_AUDIO = "no audio"
NO_SPEECH = "no speech"
AUDIO_UNREADABLE = "audio unreadable"
FAILED = "failed"  # the transcription itself failed (the reason says why); the video stays


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """One video's transcription, whatever its status."""

    status: str
    reason: str | None = None
    language: str | None = None
    segments: tuple[Segment, ...] = ()
    audio_s: float = 0.0
    speech_s: float = 0.0  # what voice-activity detection kept
    asr_s: float = 0.0  # seconds spent decoding and transcribing

    @property
    def word_count(self) -> int:
        return sum(len(segment.words) for segment in self.segments)

    @property
    def real_time_factor(self) -> float | None:
        return round(self.asr_s / self.audio_s, 4) if self.audio_s > 0 else None

    @property
    def label(self) -> str:
        """The status as people read it: "audio unreadable: <reason>"."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


@dataclass(frozen=True)
class SceneSpan:
    scene_id: str
    index: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Line:
    """The part of one segment said inside one scene."""

    scene_id: str
    scene_index: int
    segment_index: int
    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = field(default=())
    sentence: str = ""  # the whole segment: a phrase across the cut is found from both sides

    @property
    def line_id(self) -> str:
        return f"{self.scene_id}:{self.segment_index:05d}"

    def words_json(self) -> str:
        return json.dumps([[w.text, round(w.start_s, 3), round(w.end_s, 3)] for w in self.words])


def words_from_json(data: str) -> tuple[Word, ...]:
    return tuple(Word(text, float(start), float(end)) for text, start, end in json.loads(data))


def _scene_at(scenes: list[SceneSpan], t: float) -> SceneSpan:
    for scene in scenes:
        if t < scene.end_s:
            return scene
    return scenes[-1]


# Whisper's own test for a failed decode: text that compresses more than this repeats itself
# ("end of the end of the end of ..."), a loop a small model falls into under noise. Only a
# segment of LOOP_MIN_BYTES or more is judged: people repeat themselves briefly ("Thank you.
# Thank you. ...", "No, no, no, ..." score 2.5-4.7 at 50-80 bytes), a loop runs on.
REPEATS_ABOVE = 2.4
LOOP_MIN_BYTES = 120


def repeats_itself(text: str, limit: float = REPEATS_ABOVE) -> bool:
    """True when `text` is a decoding loop: at least LOOP_MIN_BYTES long and its zlib
    compression ratio above `limit`."""
    data = text.strip().encode("utf-8")
    return len(data) >= LOOP_MIN_BYTES and len(data) / len(zlib.compress(data)) > limit


# Whisper's segments run across the silences voice-activity detection cut out (it joins the
# speech it keeps): a pause this long between two words ends a sentence.
MAX_PAUSE_S = 1.0


def split_at_pauses(segments: tuple[Segment, ...], max_pause_s: float = MAX_PAUSE_S):
    """The segments cut wherever two words are further apart than `max_pause_s`."""
    out: list[Segment] = []
    for segment in segments:
        if not segment.words:
            out.append(segment)
            continue
        run = [segment.words[0]]
        for word in segment.words[1:]:
            if word.start_s - run[-1].end_s > max_pause_s:
                out.append(_segment_of(run))
                run = []
            run.append(word)
        out.append(_segment_of(run))
    return out


def _segment_of(words: list[Word]) -> Segment:
    return Segment(words[0].start_s, words[-1].end_s, "".join(w.text for w in words), tuple(words))


def lines_by_scene(segments: tuple[Segment, ...], scenes: list[SceneSpan]) -> list[Line]:
    """Each sentence's words grouped by the scene their middle falls in, clamped to it: a
    sentence across a cut gives one line on each side."""
    if not scenes:
        return []
    ordered = sorted(scenes, key=lambda s: s.start_s)
    lines: list[Line] = []
    for number, segment in enumerate(split_at_pauses(segments)):
        words = segment.words or (Word(segment.text.strip(), segment.start_s, segment.end_s),)
        groups: list[tuple[SceneSpan, list[Word]]] = []
        for word in words:
            scene = _scene_at(ordered, (word.start_s + word.end_s) / 2)
            if groups and groups[-1][0] is scene:
                groups[-1][1].append(word)
            else:
                groups.append((scene, [word]))
        for scene, mine in groups:
            start = min(max(mine[0].start_s, scene.start_s), scene.end_s)
            end = max(min(mine[-1].end_s, scene.end_s), start)
            clamped = tuple(
                Word(
                    w.text,
                    min(max(w.start_s, scene.start_s), scene.end_s),
                    min(max(w.end_s, scene.start_s), scene.end_s),
                )
                for w in mine
            )
            text = "".join(w.text for w in clamped).strip()
            lines.append(
                Line(
                    scene.scene_id,
                    scene.index,
                    number,
                    start,
                    end,
                    text,
                    clamped,
                    segment.text.strip(),
                )
            )
    return lines


def transcript_document(
    transcript: Transcript, model_id: str, lines: list[Line]
) -> dict[str, object]:
    """The transcript object kept in the store: what was found and every line by scene."""
    return {
        "model_id": model_id,
        "status": transcript.status,
        "reason": transcript.reason,
        "language": transcript.language,
        "audio_s": round(transcript.audio_s, 3),
        "speech_s": round(transcript.speech_s, 3),
        "words": transcript.word_count,  # timings stay out: the object is the same every run
        "lines": [
            {
                **{k: v for k, v in asdict(line).items() if k != "words"},
                "words": json.loads(line.words_json()),
            }
            for line in lines
        ],
    }
