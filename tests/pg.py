"""A throwaway PostgreSQL server for the tests (Debian's postgresql-15 binaries).

initdb refuses to run as root, so as root the cluster is created and run by the
``postgres`` system user (which Debian's package creates); otherwise by the current user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path


def _pg_bin() -> Path:
    """RADIO_TEST_PG_BIN, else Debian's PostgreSQL 15, else the newest one installed."""
    if os.environ.get("RADIO_TEST_PG_BIN"):
        return Path(os.environ["RADIO_TEST_PG_BIN"])
    preferred = Path("/usr/lib/postgresql/15/bin")
    if preferred.is_dir():
        return preferred
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else preferred


PG_BIN = _pg_bin()


def missing_reason() -> str | None:
    """Why no PostgreSQL can be started here, or None when it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return (f"{PG_BIN / tool} is absent: install Debian's postgresql-15 package "
                    "to run the PostgreSQL half of the database tests")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: cannot start PostgreSQL as a plain user"
    return None


class PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1:``port``; ``stop()`` removes everything."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="radio-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "radio", "--auth=trust",
                  "-E", "UTF8", "--no-locale")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1", "start")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(PG_BIN / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd=self.root)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://radio@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database; its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=radio dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (immediate mode) and delete its files."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
