"""What the `heimdex` command prints: progress lines, hits, video listings."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable

from heimdex_pipeline.pipeline.local_runs import IndexOutcome
from heimdex_pipeline.pipeline.progress import BatchProgress
from heimdex_pipeline.search.listing import VideoDetail, VideoPage
from heimdex_pipeline.search.people import PeopleList, PersonDetail
from heimdex_pipeline.search.searcher import SearchResponse


def printable(text: object) -> str:
    """One line, whatever the text holds: control characters (a newline in a file name) are
    shown escaped instead of breaking the line."""
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def show(answer, as_json: bool, printer: Callable) -> None:
    """An answer of the search layer: as JSON (its `as_dict`), or as `printer` lays it out."""
    if as_json:
        print_json(answer.as_dict())
    else:
        printer(answer)


class IndexProgress:
    """`heimdex index`'s live progress on stderr: on a terminal one status line rewritten in
    place (stage, videos done, frames decoded, elapsed, estimate) above which each finished
    video gets its line; elsewhere (a log, a pipe) plain lines, a status line when the stage
    changes or every `every_s` seconds."""

    def __init__(self, stream=None, every_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.every_s = every_s
        self._last_stage: str | None = None
        self._last_line_at = 0.0
        self._status = ""

    def video(self, number: int, total: int, outcome: IndexOutcome) -> None:
        self._clear()
        progress(number, total, outcome, self.stream)
        self._draw()

    def status(self, state: BatchProgress) -> None:
        line = state.line()
        if self.live:
            self._status = line
            self._draw()
            return
        now = time.monotonic()
        if state.stage != self._last_stage or now - self._last_line_at >= self.every_s:
            self._last_stage, self._last_line_at = state.stage, now
            print(f"  … {line}", file=self.stream, flush=True)

    def close(self) -> None:
        self._clear()
        self._status = ""

    def _draw(self) -> None:
        if self.live and self._status:
            self.stream.write("\r\x1b[K" + self._status[: shutil.get_terminal_size().columns - 1])
            self.stream.flush()

    def _clear(self) -> None:
        if self.live and self._status:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def progress(number: int, total: int, outcome: IndexOutcome, stream=None) -> None:
    """One line on stderr per video as it finishes."""
    if outcome.state == "indexed":
        count = len(outcome.scenes)
        detail = f"{count} scene{'s' * (count != 1)}, {outcome.duration_s or 0:.1f} s of video"
    else:
        detail = outcome.error or "failed"
    line = f"[{number}/{total}] {outcome.state:>8}  {outcome.source}"
    print(
        printable(f"{line}  ({detail}; at {outcome.seconds:.1f} s)"),
        file=stream or sys.stderr,
        flush=True,
    )


def format_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):d}:{rest:05.2f}"


def print_hits(response: SearchResponse) -> None:
    """A table: rank, score, video, time range, thumbnail URL."""
    if response.model is not None and response.model.is_random:
        print("!! RANDOM CLIP WEIGHTS: scores reflect pixels, not meaning !!")
    for note in response.notes:
        print(f"note: {note}")
    if not response.hits:
        print("(no matching scenes)")
    for hit in response.hits:
        span = f"{format_time(hit.start_s)}-{format_time(hit.end_s)}"
        print(
            printable(
                f"{hit.rank:>3}  {hit.score:6.3f}  {hit.video_id:<32}  {span:<17}  "
                f"{hit.thumbnail_url}"
            )
        )
        if hit.speech is not None:  # what was said, the query's words in [brackets]
            print(printable(f"     said at {format_time(hit.play_from_s)}: {hit.speech.marked}"))
        if hit.face is not None:
            face = hit.face
            who = face.person_name or (f"person {face.person_id}" if face.person_id else "a face")
            print(
                printable(
                    f"     {who} seen at {format_time(face.time_s)} (distance "
                    f"{face.distance:.3f})  {face.crop_url}"
                )
            )


def print_people(answer: PeopleList) -> None:
    if not answer.people:
        print("(no people yet: index videos with HEIMDEX_FACES=on)")
    for person in answer.people:
        print(
            printable(
                f"{person.person_id:>6}  {person.name or '(no name)':<24} {person.faces:>5} faces "
                f"{person.videos:>4} videos  {person.crop_url}"
            )
        )


def print_person(detail: PersonDetail) -> None:
    person = detail.person
    print(printable(f"person {person.person_id}: {person.name or '(no name)'}"))
    print(f"{person.faces} faces in {person.videos} videos; {len(detail.scenes)} scenes shown")
    for scene in detail.scenes:
        print(
            printable(
                f"  {scene.video_id:<32} #{scene.scene_index:<4} seen at "
                f"{format_time(scene.face.time_s)}  {scene.video_title}"
            )
        )


def print_videos(page: VideoPage) -> None:
    shown = f"{page.offset + 1}-{page.offset + len(page.videos)}" if page.videos else "none"
    print(f"{page.total} videos ({shown} shown, newest first)")
    for video in page.videos:
        duration = f"{video.duration_s:7.1f}s" if video.duration_s is not None else "      -"
        note = video.error_text if video.error_text else video.thumbnail_url
        print(
            printable(
                f"{video.video_id:<36} {video.owner:<12} {video.state:<10} {duration} "
                f"{video.scene_count:>4} scenes  {video.title}  {note or ''}"
            )
        )


def print_video(detail: VideoDetail) -> None:
    facts = detail.video
    for name, value in facts.items():
        if value is not None:
            print(printable(f"{name:>12}: {value}"))
    print(f"{len(detail.scenes)} scenes")
    for scene in detail.scenes:
        span = f"{format_time(scene.start_s)}-{format_time(scene.end_s)}"
        print(printable(f"  #{scene.index:<4} {span:<17} {scene.thumbnail_url}"))
