"""A throwaway PostgreSQL cluster for tests: `initdb` in a temp dir, `pg_ctl` on a free
loopback port, a fresh database per test, everything removed afterwards.

initdb refuses to run as root, so as root the cluster belongs to the `postgres` user
(created when missing) and its commands run through `runuser`. PostgreSQL's binaries
come from the base image (/usr/lib/postgresql/<version>/bin) or PATH.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def pg_bindir() -> Path | None:
    """The directory with initdb and pg_ctl, newest version first; None if absent."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                        reverse=True)
    for d in candidates:
        if os.access(Path(d) / "initdb", os.X_OK) and os.access(Path(d) / "pg_ctl", os.X_OK):
            return Path(d)
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="aftercare-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        # A test cluster: durable commits as in production except the fsync of each
        # (fsync=off loses data only on power loss; a killed process loses nothing).
        self._opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                      "-c fsync=off -c full_page_writes=off -c max_connections=200")

    def _run(self, *cmd: str) -> None:
        argv = [str(self.bindir / cmd[0]), *cmd[1:]]
        if self._as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stdout}{out.stderr}")

    def pg_ctl(self, action: str, *args: str) -> None:
        """`pg_ctl stop|start|restart` on this cluster (start uses the same options)."""
        extra = ["-o", self._opts, "-l", str(self.dir / "log")] if action != "stop" else []
        self._run("pg_ctl", "-D", str(self.data), *extra, "-w", "-t", "60", action, *args)

    def start(self) -> PgCluster:
        if self._as_root:
            if subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
                subprocess.run(["useradd", "--system", "--no-create-home", "postgres"],
                               check=True, capture_output=True)
            shutil.chown(self.dir, "postgres")
        else:
            self.user = os.environ.get("USER") or "postgres"
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust",
                  "--encoding=UTF8", "--no-sync")
        self.pg_ctl("start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_cluster() -> Iterator[PgCluster]:
    """A started cluster, stopped and removed afterwards; pytest skips (with the reason)
    only when this machine has no PostgreSQL binaries."""
    import pytest

    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl) on this machine")
    cluster = PgCluster(bindir).start()
    try:
        yield cluster
    finally:
        cluster.stop()

