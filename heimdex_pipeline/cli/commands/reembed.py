"""`heimdex reembed`: every indexed video embedded with the configured model."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_reembed(args: argparse.Namespace, settings: Settings) -> int:
    if args.backfill:
        return _launch_backfill(settings)
    from heimdex_pipeline.clip.worker import serving

    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline.pipeline.local_runs import reembed

        report = reembed(settings)
    print(report.summary(), file=sys.stderr)
    return 0 if report.complete else 1


def _launch_backfill(settings: Settings) -> int:
    """The same work as a backfill of reembed_videos, for the daemon to run (and the UI to show)."""
    from heimdex_pipeline.catalog.videos import indexed_video_ids
    from heimdex_pipeline.pipeline.backfills import BackfillError, launch_backfill
    from heimdex_pipeline.pipeline.instance import dagster_instance
    from heimdex_pipeline.pipeline.local_runs import precheck_weights, prepare_catalog
    from heimdex_pipeline.pipeline.tags import REEMBED_JOB
    from heimdex_pipeline.stores import open_stores

    precheck_weights(settings)
    prepare_catalog(settings)
    with open_stores(settings).catalog.session() as session:
        targets = indexed_video_ids(session)
    try:
        launched = launch_backfill(dagster_instance(settings), REEMBED_JOB, targets)
    except BackfillError as error:
        print(f"heimdex reembed: {error}", file=sys.stderr)
        return 1
    print(
        f"backfill {launched.backfill_id}: reembed_videos for {launched.videos} indexed videos; "
        f"search moves to {settings.clip_model} / {settings.clip_pretrained} once they are all "
        f"embedded (see /runs/b/{launched.backfill_id} in the Dagster UI)",
        file=sys.stderr,
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    reembed_parser = commands.add_parser(
        "reembed", help="embed every indexed video with the configured model (after a change)"
    )
    reembed_parser.add_argument(
        "--backfill",
        action="store_true",
        help="launch it as a Dagster backfill for the daemon (shown and cancellable in the UI) "
        "instead of running it in this process",
    )
    reembed_parser.set_defaults(run=run_reembed)
