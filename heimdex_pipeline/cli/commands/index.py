"""`heimdex index PATH...`: index files or folders of videos in this process."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_index(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.clip.worker import serving

    # CLIP's worker starts first: torch's import runs beside Dagster's and the media work.
    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline.cli import console
        from heimdex_pipeline.pipeline.local_runs import index_paths

        outcomes = index_paths(args.paths, settings, on_done=console.progress)
    if args.json:
        console.print_json([outcome.as_dict() for outcome in outcomes])
    failed = [o for o in outcomes if o.state != "indexed"]
    print(f"{len(outcomes) - len(failed)} indexed, {len(failed)} failed", file=sys.stderr)
    return 1 if failed or not outcomes else 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    index = commands.add_parser("index", help="index video files or folders of videos")
    index.add_argument("paths", nargs="+")
    index.add_argument("--json", action="store_true", help="print one JSON object per input")
    index.set_defaults(run=run_index)
