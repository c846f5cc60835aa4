"""`heimdex retire`: Dagster keeps the partitions of at most N videos, the newest; the older
indexed videos stay in the catalog, searchable, and get their partition back when run again."""

from __future__ import annotations

import argparse
import json
import sys

from heimdex_pipeline.cli.arguments import non_negative
from heimdex_pipeline.settings import Settings


def run_retire(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.videos import indexed_video_ids
    from heimdex_pipeline.pipeline.instance import dagster_instance
    from heimdex_pipeline.pipeline.local_runs import prepare_catalog
    from heimdex_pipeline.pipeline.retire import retire_partitions
    from heimdex_pipeline.stores import open_stores

    keep = args.keep if args.keep is not None else settings.keep_partitions
    if keep is None:
        print(
            "heimdex retire: say how many to keep: --keep N or HEIMDEX_KEEP_PARTITIONS",
            file=sys.stderr,
        )
        return 2
    prepare_catalog(settings)
    catalog = open_stores(settings).catalog

    def indexed() -> set[str]:
        with catalog.reading() as session:
            return set(indexed_video_ids(session))

    done = retire_partitions(dagster_instance(settings), indexed, keep, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"partitions": done.partitions, "retired": len(done.retired),
                          "kept": done.kept, "busy": done.busy}))  # fmt: skip
    verb = "would retire" if args.dry_run else "retired"
    videos = f"{done.busy} indexed video{'' if done.busy == 1 else 's'}"
    spared = f" ({videos} spared: a run or backfill covers them)" if done.busy else ""
    print(
        f"{verb} {len(done.retired)} of {done.partitions} video partitions, {done.kept} kept"
        + spared,
        file=sys.stderr,
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    retire = commands.add_parser(
        "retire",
        help="keep the Dagster partitions of at most N videos (older indexed ones are retired: "
        "still searchable, their partition back when they run again)",
    )
    retire.add_argument(
        "--keep", type=non_negative, metavar="N", help="partitions kept (HEIMDEX_KEEP_PARTITIONS)"
    )
    retire.add_argument("--dry-run", action="store_true", help="say what would go, change nothing")
    retire.add_argument("--json", action="store_true")
    retire.set_defaults(run=run_retire)
