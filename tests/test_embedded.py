"""The embedded default database: with no URL configured, one persistent PostgreSQL per DTC_HOME,
started on first use, shared by every process, and still holding the windows after a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_dtc import DatabaseUnavailableError
from dagster_dtc.embedded import embedded_database_url

from .pg import EmbeddedServer

pytestmark = pytest.mark.slow

# Dagster's code server (where sensors run, and so where the embedded server is first started on a
# fresh machine) is a process full of gRPC threads. Starting PostgreSQL from such a process directly
# crashed initdb (SIGSEGV / SIGABRT in the forked child); this reproduces that process.
GRPC_PROCESS = textwrap.dedent(
    """
    import sys, threading, time
    from concurrent import futures
    from pathlib import Path
    import grpc
    from dagster_dtc.embedded import embedded_database_url

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    stop = threading.Event()

    def chatter():
        while not stop.is_set():
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
                channel.unary_unary("/dtc.Test/Ping")(b"", timeout=0.2)
            except Exception:
                pass
            finally:
                channel.close()

    for _ in range(4):
        threading.Thread(target=chatter, daemon=True).start()
    time.sleep(0.5)
    print(embedded_database_url(Path(sys.argv[1])))
    stop.set()
    """
)

# A plain worker with nothing configured: TaskStore() finds (or starts) the embedded server.
WORKER = textwrap.dedent(
    """
    import json, sys
    from datetime import datetime, timezone
    from dagster_dtc import TaskStore

    store = TaskStore()
    store.init_schema()
    day = datetime(2026, 12, 1, tzinfo=timezone.utc)
    created = store.create_windows("call_mom", "P1D", day, day.replace(day=4))
    claims = store.claim("call_mom", worker=sys.argv[1])
    for claim in claims:
        claim.complete(f"called by {sys.argv[1]}")
    done = [t.message for t in store.query("call_mom", ["COMPLETE"])]
    print(json.dumps({"url": store.database_url, "created": created, "complete": done}))
    """
)


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTC_")}
    env["DTC_HOME"] = str(home)
    return env


def _python(code: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=240, env=env
    )


@pytest.fixture
def home(tmp_home: Path) -> Iterator[Path]:
    """A DTC_HOME of the test's own; the server started in it is stopped afterwards."""
    try:
        yield tmp_home
    finally:
        pgdata = tmp_home / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            EmbeddedServer.attach(pgdata, "").destroy()


def test_first_start_from_a_process_full_of_grpc_threads(home: Path) -> None:
    result = _python(GRPC_PROCESS, str(home), env=_env(home))
    assert result.returncode == 0, result.stderr[-3000:]
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("postgresql://") and str(home / "pgdata") in url
    import psycopg

    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_default_database_is_shared_and_survives_a_restart(home: Path) -> None:
    env = _env(home)
    first = _python(WORKER, "phone-1", env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    one = json.loads(first.stdout.strip().splitlines()[-1])
    assert one["created"] == 3 and one["complete"] == ["called by phone-1"]
    assert str(home / "pgdata") in one["url"]

    # Another process joins the same server and sees the first one's work.
    second = _python(WORKER, "phone-2", env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    two = json.loads(second.stdout.strip().splitlines()[-1])
    assert two["url"] == one["url"]
    assert two["created"] == 0 and two["complete"] == ["called by phone-1", "called by phone-2"]

    # The machine restarts: the server is down; the next process starts it again, data intact.
    EmbeddedServer.attach(home / "pgdata", one["url"]).stop()
    third = _python(WORKER, "phone-3", env=env)
    assert third.returncode == 0, third.stderr[-3000:]
    three = json.loads(third.stdout.strip().splitlines()[-1])
    assert three["created"] == 0
    assert three["complete"] == ["called by phone-1", "called by phone-2", "called by phone-3"]


def test_an_unusable_home_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should go")
    with pytest.raises(DatabaseUnavailableError, match="Set DTC_HOME to a writable folder") as err:
        embedded_database_url(blocker / "home")
    assert str(blocker) in str(err.value)
