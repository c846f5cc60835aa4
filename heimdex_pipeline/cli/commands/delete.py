"""`heimdex delete ID...`: a video out of every store, and its partition."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_delete(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli.console import printable
    from heimdex_pipeline.pipeline.local_runs import delete_videos

    missing = delete_videos(args.video_ids, settings)
    for video_id in args.video_ids:
        state = "not found" if video_id in missing else "deleted"
        print(printable(f"{video_id}: {state}"), file=sys.stderr)
    return 1 if missing else 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    delete = commands.add_parser(
        "delete", help="delete videos: rows, objects, vectors and partitions"
    )
    delete.add_argument("video_ids", nargs="+", metavar="VIDEO_ID")
    delete.set_defaults(run=run_delete)
