"""`heimdex demo [PATH...]`: index sample clips, then search them (see `cli/demo.py`)."""

from __future__ import annotations

import argparse

from heimdex_pipeline.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.cli.demo import run_demo

    return run_demo(settings, args.paths)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    demo = commands.add_parser("demo", help="index sample clips, then search them")
    demo.add_argument("paths", nargs="*", help="clips to use instead of the bundled samples")
    demo.set_defaults(run=run)
