"""The `heimdex` command: index, search, list, show and delete videos, re-embed, run the demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from heimdex_pipeline.cli.commands import (
    backfill,
    db,
    delete,
    demo,
    dev,
    index,
    people,
    reembed,
    retire,
    search,
    serve,
    users,
    videos,
)
from heimdex_pipeline.settings import Settings, SettingsError, load_settings

COMMANDS = (
    index, search, videos, people, users, delete, reembed, backfill, retire, serve, dev, db, demo,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="heimdex", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def explain(error: BaseException, settings: Settings | None) -> str | None:
    """One line for the failures a person can fix (configuration, an unreachable service, a
    bad query); None for a bug, which keeps its traceback."""
    from heimdex_pipeline.catalog.database import CatalogNotReadyError
    from heimdex_pipeline.catalog.users import UserError
    from heimdex_pipeline.catalog.videos import OwnedByAnotherError
    from heimdex_pipeline.cli.console import printable
    from heimdex_pipeline.clip.model import ClipLoadError
    from heimdex_pipeline.library.transient import describe, is_transient
    from heimdex_pipeline.search.searcher import SearchError
    from heimdex_pipeline.speech.model import AsrLoadError

    known = (
        ClipLoadError,
        AsrLoadError,
        CatalogNotReadyError,
        SearchError,
        SettingsError,
        UserError,
        OwnedByAnotherError,
    )
    if isinstance(error, known):
        return printable(error)
    if is_transient(error) and settings is not None:
        from sqlalchemy.exc import SQLAlchemyError

        if isinstance(error, SQLAlchemyError):
            first = (str(getattr(error, "orig", error)).strip().splitlines() or [""])[0]
            if _raised_in_dagster(error):
                return printable(f"the Dagster instance at {settings.dagster_home} failed: {first}")
            return printable(
                f"cannot reach the catalog database at {settings.database_url_redacted}: {first}"
            )
        where = settings.s3.endpoint if settings.s3 is not None else settings.object_store
        return printable(f"cannot reach the object store at {where}: {describe(error)}")
    return None


def _raised_in_dagster(error: BaseException) -> bool:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/dagster/" in f.filename or "/heimdex_pipeline/" in f.filename]
    return bool(ours) and "/dagster/" in ours[-1].filename


def _one_query(args: argparse.Namespace) -> bool:
    what = args.query is not None or args.image is not None
    who = args.face is not None or args.person is not None
    both_what = args.query is not None and args.image is not None
    both_who = args.face is not None and args.person is not None
    return (what or who) and not both_what and not both_who


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("LANCEDB_LOG", "error")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passes_on", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    if args.command == "search" and not _one_query(args):
        print(
            "heimdex search: give a QUERY or --image PATH (not both), and/or --face PHOTO or "
            "--person ID_OR_NAME (not both)",
            file=sys.stderr,
        )
        return 2
    settings = None
    try:
        settings = load_settings()
        return args.run(args, settings)
    except Exception as error:
        line = explain(error, settings)
        if line is None:
            raise
        prefix = "heimdex: bad configuration: " if isinstance(error, SettingsError) else "heimdex: "
        print(prefix + line, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
