"""`heimdex db upgrade` and `heimdex db revision`: the catalog's migrations."""

from __future__ import annotations

import argparse

from heimdex_pipeline.settings import Settings


def run_db(args: argparse.Namespace, settings: Settings) -> int:
    from heimdex_pipeline.catalog.database import upgrade

    upgrade(settings.database_url, args.revision, settings.default_owner)
    print(f"catalog at {settings.database_url_redacted} is at {args.revision}")
    return 0


def run_db_revision(args: argparse.Namespace, settings: Settings) -> int:
    """Autogenerate a migration from the models, against a scratch database at head."""
    import tempfile

    from alembic import command

    from heimdex_pipeline.catalog.database import alembic_config, upgrade

    with tempfile.TemporaryDirectory() as folder:
        scratch = f"sqlite:///{folder}/scratch.sqlite"
        upgrade(scratch)
        script = command.revision(alembic_config(scratch), args.message, autogenerate=True)
    print(f"wrote {script.path}: review it, then commit it with the model change")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the command's parser."""
    db = commands.add_parser("db", help="catalog database commands")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply migrations (a deploy step)")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(run=run_db)
    db_revision = db_commands.add_parser("revision", help="generate a migration from the models")
    db_revision.add_argument("message")
    db_revision.set_defaults(run=run_db_revision)
