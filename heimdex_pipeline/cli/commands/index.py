"""`heimdex index PATH...`: index files or folders of videos in this process."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_index(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli.console import printable
    from heimdex_pipeline.clip.worker import serving
    from heimdex_pipeline.library.sources import expand_inputs, folders_without_videos

    for folder in folders_without_videos(args.paths):
        print(printable(f"heimdex index: {folder}: a folder with no video files in it"),
              file=sys.stderr)  # fmt: skip
    if not expand_inputs(args.paths):
        print("heimdex index: nothing to index", file=sys.stderr)
        return 1

    # CLIP's worker starts first: torch's import runs beside Dagster's and the media work.
    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline.cli import console
        from heimdex_pipeline.pipeline.local_runs import index_paths

        shown = console.IndexProgress()
        try:
            outcomes = index_paths(
                args.paths,
                settings,
                on_done=shown.video,
                on_progress=shown.status,
                owner=args.owner,
            )
        finally:
            shown.close()
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
    index.add_argument(
        "--owner",
        metavar="NAME",
        help="whose library the videos go in (a user; default: HEIMDEX_DEFAULT_OWNER)",
    )
    index.set_defaults(run=run_index)
