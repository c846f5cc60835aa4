"""A PostgreSQL server of our own, so a test or a benchmark can restart it under load."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks._runs import free_port


def _bindir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL's initdb is not installed (run scripts/ensure-postgres)")
    return Path(initdb).parent


@dataclass
class PrivateServer:
    """A running server: trust auth for `postgres` on 127.0.0.1:`port`."""

    port: int
    folder: Path
    _pg_ctl: list[str]
    _options: str

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def restart(self, down_s: float = 0.0) -> None:
        """Stop (closing every connection at once), stay down `down_s` seconds, and start
        again; waits until it answers."""
        if not down_s:
            subprocess.run(
                [*self._pg_ctl, "-m", "fast", "-o", self._options, "restart"],
                check=True, capture_output=True,
            )  # fmt: skip
            return
        subprocess.run([*self._pg_ctl, "-m", "fast", "stop"], check=True, capture_output=True)
        time.sleep(down_s)
        subprocess.run(
            [*self._pg_ctl, "-o", self._options, "start"], check=True, capture_output=True
        )

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        admin = create_engine(
            self.url("postgres").replace("postgresql://", "postgresql+psycopg2://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    """initdb in a fresh folder, start on a free port, stop and remove at the end. As root the
    server runs as the `postgres` user (initdb refuses root)."""
    folder = Path(tempfile.mkdtemp(prefix="heimdex-pg-"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(folder, "postgres")
    data, sockets = folder / "data", folder / "sockets"
    bindir = _bindir()
    subprocess.run(
        [*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
         "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run([*as_user, "mkdir", "-p", str(sockets)], check=True)
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
              "-l", str(folder / "server.log")]  # fmt: skip
    subprocess.run([*pg_ctl, "-o", options, "start"], check=True, capture_output=True)
    try:
        yield PrivateServer(port, folder, pg_ctl, options)
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
