"""`heimdex dev [ARGS...]`: `dagster dev` on this code location, on a home that exists.

The embedded default as a newcomer starts it: DAGSTER_HOME is made under HEIMDEX_HOME if it is
missing (Dagster refuses a DAGSTER_HOME that does not exist), the inbox folder is made for a
local store, and `dagster dev -m heimdex_pipeline.definitions` replaces this process (so it
stops on Ctrl-C like itself). The catalog is migrated by the first process that opens it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from heimdex_pipeline.settings import Settings

CODE_LOCATION = "heimdex_pipeline.definitions"


def dagster_dev_command(extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "dagster", "dev", "-m", CODE_LOCATION, *extra]


def run_dev(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.pipeline.instance import prepare_dagster_home
    from heimdex_pipeline.stores.keys import INCOMING_PREFIX

    prepare_dagster_home(settings)
    if not settings.object_store_is_s3:
        inbox = Path(settings.object_store) / INCOMING_PREFIX
        inbox.mkdir(parents=True, exist_ok=True)
        print(f"drop videos into {inbox}", file=sys.stderr, flush=True)
    command = dagster_dev_command([a for a in args.extra if a != "--"])
    os.execve(command[0], command, {**os.environ, "DAGSTER_HOME": str(settings.dagster_home)})
    return 0  # not reached


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    dev = commands.add_parser(
        "dev",
        help="dagster dev on this code location (makes DAGSTER_HOME and the inbox); other "
        "arguments (--port 3000 …) go to dagster dev",
    )
    dev.set_defaults(run=run_dev, passes_on=True)  # other arguments go to dagster dev
