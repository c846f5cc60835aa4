"""`heimdex search`: scenes by text, by an example image, by a face photo or a person."""

from __future__ import annotations

import argparse

from heimdex_pipeline.cli.arguments import non_negative, seconds
from heimdex_pipeline.settings import Settings


def run_search(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli import console
    from heimdex_pipeline.search.searcher import Searcher
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
        mode=args.mode,
        face=args.face,
        person=args.person,
        face_distance=args.face_distance or settings.face_match_distance,
        owner=args.owner,
    )
    console.show(response, args.json, console.print_hits)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    search = commands.add_parser("search", help="find scenes by text or by an example image")
    search.add_argument("query", nargs="?")
    search.add_argument("--image", help="an image file to search by instead of text")
    search.add_argument("--limit", type=non_negative, default=10)
    search.add_argument("--offset", type=non_negative, default=0)
    search.add_argument("--video", action="append", help="only this video id (repeatable)")
    search.add_argument("--min-duration", type=seconds, help="shortest scene, seconds")
    search.add_argument("--max-duration", type=seconds, help="longest scene, seconds")
    search.add_argument(
        "--mode",
        choices=("visual", "speech", "hybrid"),
        default="hybrid",
        help="what to match: the pictures (CLIP), what is said (transcripts), or both fused "
        "(default)",
    )
    search.add_argument("--face", metavar="PHOTO", help="only scenes where this face is seen")
    search.add_argument("--person", metavar="ID_OR_NAME", help="only scenes with this person")
    search.add_argument(
        "--face-distance",
        type=float,
        help="how near a face must be to the photo's (Euclidean; default "
        "HEIMDEX_FACE_MATCH_DISTANCE, 0.6)",
    )
    search.add_argument(
        "--owner", metavar="NAME", help="only this user's library (default: every library)"
    )
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=run_search)
