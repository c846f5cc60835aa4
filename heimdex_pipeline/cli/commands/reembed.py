"""`heimdex reembed`: every indexed video embedded with the configured model."""

from __future__ import annotations

import argparse
import sys

from heimdex_pipeline.settings import Settings


def run_reembed(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.clip.worker import serving

    with serving(settings.clip_model, settings.clip_pretrained):
        from heimdex_pipeline.pipeline.local_runs import reembed

        report = reembed(settings)
    print(report.summary(), file=sys.stderr)
    return 0 if report.complete else 1


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    reembed_parser = commands.add_parser(
        "reembed", help="embed every indexed video with the configured model (after a change)"
    )
    reembed_parser.set_defaults(run=run_reembed)
