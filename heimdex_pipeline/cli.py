"""The `heimdex` command: index videos, search scenes, list videos, run the demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from heimdex_pipeline.settings import Settings, SettingsError, load_settings


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _progress(number: int, total: int, outcome) -> None:
    if outcome.state == "indexed":
        count = len(outcome.scenes)
        detail = f"{count} scene{'s' * (count != 1)}, {outcome.duration_s:.1f} s of video"
    else:
        detail = outcome.error or "failed"
    line = f"[{number}/{total}] {outcome.state:>8}  {outcome.source}"
    print(f"{line}  ({detail}; {outcome.seconds:.1f} s)", file=sys.stderr, flush=True)


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.indexing import index_paths

    outcomes = index_paths(args.paths, settings, on_done=_progress)
    if args.json:
        _print_json([outcome.as_dict() for outcome in outcomes])
    failed = [o for o in outcomes if o.state != "indexed"]
    print(
        f"{len(outcomes) - len(failed)} indexed, {len(failed)} failed",
        file=sys.stderr,
    )
    return 1 if failed or not outcomes else 0


def _format_time(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):d}:{rest:05.2f}"


def print_hits(response) -> None:
    """A table: rank, score, video, time range, thumbnail URL."""
    if response.model.is_random:
        print("!! RANDOM CLIP WEIGHTS: scores reflect pixels, not meaning !!")
    if not response.hits:
        print("(no matching scenes)")
    for hit in response.hits:
        span = f"{_format_time(hit.start_s)}-{_format_time(hit.end_s)}"
        print(
            f"{hit.rank:>3}  {hit.score:6.3f}  {hit.video_id:<32}  {span:<17}  {hit.thumbnail_url}"
        )


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.resources import build_resources
    from heimdex_pipeline.search import SearchError, search_scenes

    resources = build_resources(settings)
    try:
        response = search_scenes(
            resources["catalog"],
            resources["objects"],
            resources["vectors"],
            resources["clip"],
            text=args.query if args.image is None else None,
            image=args.image,
            limit=args.limit,
            offset=args.offset,
            video_ids=args.video or None,
            min_duration_s=args.min_duration,
            max_duration_s=args.max_duration,
        )
    except SearchError as error:
        print(f"heimdex search: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(response.as_dict())
    else:
        print_hits(response)
    return 0


def cmd_videos(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.resources import build_resources
    from heimdex_pipeline.search import list_videos

    resources = build_resources(settings)
    summaries = list_videos(resources["catalog"], resources["objects"])
    if args.json:
        _print_json([s.as_dict() for s in summaries])
        return 0
    for s in summaries:
        duration = f"{s.duration_s:7.1f}s" if s.duration_s is not None else "      -"
        note = s.error_text if s.error_text else s.thumbnail_url
        print(f"{s.video_id:<36} {s.state:<10} {duration} {s.scene_count:>4} scenes  {note}")
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.database import upgrade

    upgrade(settings.database_url, args.revision)
    print(f"catalog at {settings.database_url} is at {args.revision}")
    return 0


def cmd_db_revision(args: argparse.Namespace, settings: Settings) -> int:
    """Autogenerate a migration from the models, against a scratch database at head."""
    import tempfile

    from alembic import command

    from heimdex_pipeline.catalog.database import alembic_config, upgrade

    with tempfile.TemporaryDirectory() as folder:
        scratch = f"sqlite:///{folder}/scratch.sqlite"
        upgrade(scratch)
        script = command.revision(alembic_config(scratch), args.message, autogenerate=True)
    print(f"wrote {script.path}: review it, then commit it with the model change")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.demo import run_demo

    return run_demo(settings, args.paths)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heimdex", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    index = commands.add_parser("index", help="index video files or folders of videos")
    index.add_argument("paths", nargs="+")
    index.add_argument("--json", action="store_true", help="print one JSON object per input")
    index.set_defaults(run=cmd_index)

    search = commands.add_parser("search", help="find scenes by text or by an example image")
    search.add_argument("query", nargs="?")
    search.add_argument("--image", help="an image file to search by instead of text")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--offset", type=int, default=0)
    search.add_argument("--video", action="append", help="only this video id (repeatable)")
    search.add_argument("--min-duration", type=float, help="shortest scene, seconds")
    search.add_argument("--max-duration", type=float, help="longest scene, seconds")
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=cmd_search)

    videos = commands.add_parser("videos", help="list every video with state and thumbnail")
    videos.add_argument("--json", action="store_true")
    videos.set_defaults(run=cmd_videos)

    db = commands.add_parser("db", help="catalog database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(run=cmd_db)
    db_revision = db_commands.add_parser("revision", help="generate a migration from the models")
    db_revision.add_argument("message")
    db_revision.set_defaults(run=cmd_db_revision)

    demo = commands.add_parser("demo", help="index sample clips, then search them")
    demo.add_argument("paths", nargs="*", help="clips to use instead of the bundled samples")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("LANCEDB_LOG", "error")
    args = build_parser().parse_args(argv)
    if args.command == "search" and not args.query and not args.image:
        print("heimdex search: give a QUERY or --image PATH", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"heimdex: bad configuration: {error}", file=sys.stderr)
        return 2
    try:
        return args.run(args, settings)
    except Exception as error:  # a clear line, not a traceback, for configuration-level errors
        from heimdex_pipeline.resources.clip import ClipLoadError

        if isinstance(error, ClipLoadError):
            print(f"heimdex: {error}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
