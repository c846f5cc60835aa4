"""`heimdex videos` and `heimdex video ID`: the library, and one video with its scenes."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.cli.arguments import non_negative
from heimdex_pipeline.settings import Settings


def run_videos(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.search.listing import list_videos
    from heimdex_pipeline.stores import open_stores

    page = list_videos(open_stores(settings), args.limit, args.offset, owner=args.owner)
    console.show(page, args.json, console.print_videos)
    return 0


def run_video(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.search.listing import video_detail
    from heimdex_pipeline.stores import open_stores

    try:
        detail = video_detail(open_stores(settings), args.video_id)
    except LookupError as error:
        print(f"heimdex video: {console.printable(error.args[0])}", file=sys.stderr)
        return 1
    console.show(detail, args.json, console.print_video)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    videos = commands.add_parser("videos", help="list videos, newest first")
    videos.add_argument("--limit", type=non_negative, default=50)
    videos.add_argument("--offset", type=non_negative, default=0)
    videos.add_argument(
        "--owner", metavar="NAME", help="only this user's library (default: every library)"
    )
    videos.add_argument("--json", action="store_true")
    videos.set_defaults(run=run_videos)

    video = commands.add_parser("video", help="one video with its scenes and thumbnail URLs")
    video.add_argument("video_id")
    video.add_argument("--json", action="store_true")
    video.set_defaults(run=run_video)
