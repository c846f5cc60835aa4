"""The `heimdex` command: index, search, list, show and delete videos, re-embed, run the demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from heimdex_pipeline.settings import Settings, SettingsError, load_settings


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.clip_worker import serving

    # CLIP's worker starts first: torch's import runs beside Dagster's and the media work.
    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline import console
        from heimdex_pipeline.ingest import index_paths

        outcomes = index_paths(args.paths, settings, on_done=console.progress)
    if args.json:
        console.print_json([outcome.as_dict() for outcome in outcomes])
    failed = [o for o in outcomes if o.state != "indexed"]
    print(f"{len(outcomes) - len(failed)} indexed, {len(failed)} failed", file=sys.stderr)
    return 1 if failed or not outcomes else 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline import console
    from heimdex_pipeline.search import Searcher
    from heimdex_pipeline.stores import open_stores

    searcher = Searcher(open_stores(settings), (settings.clip_model, settings.clip_pretrained))
    response = searcher.search(
        text=args.query,
        image=args.image,
        limit=args.limit,
        offset=args.offset,
        video_ids=args.video or None,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
    )
    if args.json:
        console.print_json(response.as_dict())
    else:
        console.print_hits(response)
    return 0


def cmd_videos(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline import console
    from heimdex_pipeline.search import list_videos
    from heimdex_pipeline.stores import open_stores

    page = list_videos(open_stores(settings), args.limit, args.offset)
    if args.json:
        console.print_json(page.as_dict())
    else:
        console.print_videos(page)
    return 0


def cmd_video(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline import console
    from heimdex_pipeline.search import video_detail
    from heimdex_pipeline.stores import open_stores

    try:
        detail = video_detail(open_stores(settings), args.video_id)
    except LookupError as error:
        print(f"heimdex video: {console.printable(error.args[0])}", file=sys.stderr)
        return 1
    if args.json:
        console.print_json(detail.as_dict())
    else:
        console.print_video(detail)
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.console import printable
    from heimdex_pipeline.ingest import delete_videos

    missing = delete_videos(args.video_ids, settings)
    for video_id in args.video_ids:
        state = "not found" if video_id in missing else "deleted"
        print(printable(f"{video_id}: {state}"), file=sys.stderr)
    return 1 if missing else 0


def cmd_reembed(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.clip_worker import serving

    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline.ingest import reembed

        report = reembed(settings)
    print(report.summary(), file=sys.stderr)
    return 0 if report.complete else 1


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import logging

    import uvicorn

    from heimdex_pipeline.serve.app import create_app

    serve = dataclasses.replace(
        settings.serve, host=args.host or settings.serve.host, port=args.port or settings.serve.port
    )
    settings = dataclasses.replace(settings, serve=serve)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(f"Heimdex search on http://{serve.host}:{serve.port}/ (API docs at /docs)", flush=True)
    uvicorn.run(create_app(settings), host=serve.host, port=serve.port, access_log=False)
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.database import upgrade

    upgrade(settings.database_url, args.revision)
    print(f"catalog at {settings.database_url_redacted} is at {args.revision}")
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


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 0 or value > 10**9:
        raise argparse.ArgumentTypeError(f"expected 0 to 1000000000, not {text}")
    return value


def _duration(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None


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
    search.add_argument("--limit", type=_non_negative, default=10)
    search.add_argument("--offset", type=_non_negative, default=0)
    search.add_argument("--video", action="append", help="only this video id (repeatable)")
    search.add_argument("--min-duration", type=_duration, help="shortest scene, seconds")
    search.add_argument("--max-duration", type=_duration, help="longest scene, seconds")
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=cmd_search)

    videos = commands.add_parser("videos", help="list videos, newest first")
    videos.add_argument("--limit", type=_non_negative, default=50)
    videos.add_argument("--offset", type=_non_negative, default=0)
    videos.add_argument("--json", action="store_true")
    videos.set_defaults(run=cmd_videos)

    video = commands.add_parser("video", help="one video with its scenes and thumbnail URLs")
    video.add_argument("video_id")
    video.add_argument("--json", action="store_true")
    video.set_defaults(run=cmd_video)

    delete = commands.add_parser(
        "delete", help="delete videos: rows, objects, vectors and partitions"
    )
    delete.add_argument("video_ids", nargs="+", metavar="VIDEO_ID")
    delete.set_defaults(run=cmd_delete)

    reembed_parser = commands.add_parser(
        "reembed", help="embed every indexed video with the configured model (after a change)"
    )
    reembed_parser.set_defaults(run=cmd_reembed)

    serve = commands.add_parser("serve", help="the search page and HTTP API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.set_defaults(run=cmd_serve)

    db = commands.add_parser("db", help="catalog database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply migrations (a deploy step)")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(run=cmd_db)
    db_revision = db_commands.add_parser("revision", help="generate a migration from the models")
    db_revision.add_argument("message")
    db_revision.set_defaults(run=cmd_db_revision)

    demo = commands.add_parser("demo", help="index sample clips, then search them")
    demo.add_argument("paths", nargs="*", help="clips to use instead of the bundled samples")
    demo.set_defaults(run=cmd_demo)
    return parser


def explain(error: BaseException, settings: Settings | None) -> str | None:
    """One line for the failures a person can fix (configuration, an unreachable service, a
    bad query); None for a bug, which keeps its traceback."""
    from heimdex_pipeline.catalog.database import CatalogNotReadyError
    from heimdex_pipeline.clip_model import ClipLoadError
    from heimdex_pipeline.console import printable
    from heimdex_pipeline.search import SearchError
    from heimdex_pipeline.transient import describe, is_transient

    if isinstance(error, (ClipLoadError, CatalogNotReadyError, SearchError, SettingsError)):
        return printable(error)
    if is_transient(error) and settings is not None:
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(error, SQLAlchemyError):
            first = (str(getattr(error, "orig", error)).strip().splitlines() or [""])[0]
            if _raised_in_dagster(error):
                return printable(f"the Dagster instance at {settings.dagster_home} failed: {first}")
            return printable(
                f"cannot reach the catalog database at {settings.database_url_redacted}: {first}"
            )
        where = settings.s3.endpoint if settings.s3 is not None else settings.object_store
        return printable(f"cannot reach the object store at {where}: {describe(error)}")
    return None


def _raised_in_dagster(error: BaseException) -> bool:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/dagster/" in f.filename or "/heimdex_pipeline/" in f.filename]
    return bool(ours) and "/dagster/" in ours[-1].filename


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("LANCEDB_LOG", "error")
    args = build_parser().parse_args(argv)
    if args.command == "search" and (args.query is None) == (args.image is None):
        print("heimdex search: give a QUERY or --image PATH (one of them)", file=sys.stderr)
        return 2
    settings = None
    try:
        settings = load_settings()
        return args.run(args, settings)
    except Exception as error:
        line = explain(error, settings)
        if line is None:
            raise
        prefix = "heimdex: bad configuration: " if isinstance(error, SettingsError) else "heimdex: "
        print(prefix + line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
