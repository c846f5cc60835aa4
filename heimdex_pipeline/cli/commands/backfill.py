"""`heimdex backfill`: run the chain again for chosen videos without the UI's launch dialog."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from heimdex_pipeline.settings import Settings

STATES = ("uploading", "validating", "processing", "indexed", "failed")


def since(value: str) -> datetime:
    """A date or an ISO time; a time with no zone is UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is no date (2026-11-30 or an ISO time)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_backfill(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.models import VideoState
    from heimdex_pipeline.catalog.videos import chosen_video_ids
    from heimdex_pipeline.pipeline.backfills import (
        BackfillError,
        check_assets,
        check_title,
        launch_backfill,
    )
    from heimdex_pipeline.pipeline.instance import dagster_instance
    from heimdex_pipeline.pipeline.local_runs import prepare_catalog
    from heimdex_pipeline.stores import open_stores

    if not (args.all or args.failed or args.state or args.since or args.video or args.owner):
        print(
            "heimdex backfill: say which videos: --failed, --state, --since, --video, --owner "
            "or --all",
            file=sys.stderr,
        )
        return 2
    assets = [a for part in args.assets or [] for a in part.split(",") if a]
    try:
        check_assets(args.job, assets)
        check_title(args.title)
    except BackfillError as error:
        print(f"heimdex backfill: {error}", file=sys.stderr)
        return 2
    states = [VideoState(s) for s in args.state or []]
    if args.failed:
        states.append(VideoState.FAILED)
    prepare_catalog(settings)
    with open_stores(settings).catalog.session() as session:
        chosen = chosen_video_ids(
            session, states=states, since=args.since, video_ids=args.video or [], owner=args.owner
        )
    unknown = sorted(set(args.video or []) - set(chosen)) if not (states or args.since) else []
    if unknown:
        print(f"heimdex backfill: no such video: {', '.join(unknown)}", file=sys.stderr)
        return 1
    if args.dry_run:
        print(f"{len(chosen)} videos would be backfilled", file=sys.stderr)
        if args.json:
            print(json.dumps({"videos": chosen}))
        return 0
    try:
        launched = launch_backfill(
            dagster_instance(settings), args.job, chosen, assets, title=args.title
        )
    except BackfillError as error:
        print(f"heimdex backfill: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**launched.__dict__, "assets": list(launched.assets)}))
    what = f" ({', '.join(launched.assets)})" if launched.assets else ""
    print(
        f"backfill {launched.backfill_id}: {launched.job}{what} for {launched.videos} videos, "
        f"{settings.run_batch_size} to a run; see /runs/b/{launched.backfill_id} in the Dagster UI",
        file=sys.stderr,
    )
    if not launched.daemon_running:
        print(
            "no backfill daemon is running: the backfill starts when `heimdex dev` or the "
            "deployment's dagster-daemon does",
            file=sys.stderr,
        )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    parser = commands.add_parser(
        "backfill",
        help="launch a Dagster backfill of the chain for chosen videos (visible in the UI)",
        description="Launch a backfill of index_video (or reembed_videos) for the videos that "
        "match every filter given; with none, --all is required. The backfill daemon runs it "
        "in runs of HEIMDEX_RUN_BATCH_SIZE videos; the UI shows and cancels it.",
    )
    which = parser.add_argument_group(
        "which videos (a video must match every kind of filter given; --failed and each --state "
        "add a state it may be in)"
    )
    which.add_argument("--all", action="store_true", help="every video in the catalog")
    which.add_argument("--failed", action="store_true", help="videos whose indexing failed")
    which.add_argument(
        "--state", action="append", choices=STATES, help="videos in this state (repeatable)"
    )
    which.add_argument("--since", type=since, metavar="DATE", help="registered on or after")
    which.add_argument("--video", action="append", metavar="ID", help="this video (repeatable)")
    which.add_argument("--owner", metavar="NAME", help="only this user's library")
    parser.add_argument("--job", default="index_video", choices=("index_video", "reembed_videos"))
    parser.add_argument(
        "--assets", action="append", metavar="A,B", help="only these assets of the job"
    )
    parser.add_argument("--title", help="the backfill's title in the UI")
    parser.add_argument("--dry-run", action="store_true", help="count the videos, launch nothing")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(run=run_backfill)
