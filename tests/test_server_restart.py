"""The server crashes (SIGKILL) and is stopped while workers run: they see DatabaseUnavailableError
with a clear, password-free message, and once it is back nothing is lost or completed twice."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dagster_dtc import DatabaseUnavailableError, StaleClaimError, Status, TaskStore

from .core_support import utc, wait_for
from .pg import EmbeddedServer

SECRET = "s3cret-pw-77"
WINDOWS = 240
WORKERS = 3


def _url_with_password(server: EmbeddedServer) -> str:
    """Log in as a role that has a password, so that leaking it would show."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE dtc LOGIN SUPERUSER PASSWORD '{SECRET}'")
    params = conninfo_to_dict(server.url)
    host = params["host"]
    return f"postgresql://dtc:{SECRET}@/postgres?host={host}"


class Worker(threading.Thread):
    def __init__(self, url: str, table: str, index: int, stop: threading.Event) -> None:
        super().__init__(name=f"worker-{index}", daemon=True)
        self.store = TaskStore(url, table, lease_seconds=4, backoff_base=0.0, backoff_max=0.0, pool_size=2)
        self.worker = f"w{index}"
        self.stop = stop
        self.completed: list[tuple[object, int]] = []
        self.errors: list[BaseException] = []
        self.lost = 0

    def _complete(self, claim) -> None:  # type: ignore[no-untyped-def]
        while True:
            try:
                claim.complete(f"done by {self.worker}")
                self.completed.append((claim.bucket_time, claim.generation))
                return
            except DatabaseUnavailableError as exc:
                self.errors.append(exc)
                time.sleep(0.1)
            except StaleClaimError as exc:
                current = exc.current
                if (
                    current is not None
                    and current.status is Status.COMPLETE
                    and current.generation == claim.generation
                ):
                    # our earlier complete was committed; only its reply was lost with the connection
                    self.completed.append((claim.bucket_time, claim.generation))
                else:
                    self.lost += 1  # lease ran out during the outage: someone else redoes it
                return

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    claims = self.store.claim("minutely", limit=2, worker=self.worker)
                except DatabaseUnavailableError as exc:
                    self.errors.append(exc)
                    time.sleep(0.1)
                    continue
                if not claims:
                    time.sleep(0.05)
                    continue
                for claim in claims:
                    time.sleep(0.01)  # the work
                    self._complete(claim)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.store.close()


def _complete_count(url: str, table: str) -> int:
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE status = 'COMPLETE'").fetchone()
            return row[0] if row else 0
    except psycopg.OperationalError:
        return 0


class BlockedCall(threading.Thread):
    """A store call stuck behind a row lock, so that it is in flight when the server goes away."""

    def __init__(self, url: str, table: str) -> None:
        super().__init__(daemon=True)
        self.url, self.table = url, table
        self.store = TaskStore(url, table)
        self.error: BaseException | None = None
        self.result: object = None
        self.locker = psycopg.connect(url)  # holds the lock in an open transaction
        self.locker.execute(f"SELECT 1 FROM {table} WHERE name = 'blocked' FOR UPDATE")

    def run(self) -> None:
        try:
            self.result = self.store.set_status("blocked", [utc(2026, 1, 1)], Status.SKIP, "should not land")
        except BaseException as exc:
            self.error = exc

    def wait_until_blocked(self) -> None:
        def waiting() -> bool:
            with psycopg.connect(self.url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND application_name = 'dagster-dtc' AND query LIKE 'UPDATE%'"
                ).fetchone()
                return bool(row and row[0])

        wait_for(waiting, timeout=10, what="the call waiting on the lock")

    def finish(self) -> BaseException | None:
        self.join(timeout=60)
        assert not self.is_alive()
        self.store.close()
        self.locker.close()
        return self.error


def _blocked_window_untouched(url: str, table: str) -> None:
    store = TaskStore(url, table)
    try:
        task = store.get("blocked", utc(2026, 1, 1))
        assert task is not None and task.status is Status.AVAILABLE and task.message is None
    finally:
        store.close()


@pytest.mark.timeout(180)
def test_crash_and_stop_while_workers_run(own_server: EmbeddedServer) -> None:
    url = _url_with_password(own_server)
    table = "restart_tasks"
    setup = TaskStore(url, table)
    setup.init_schema()
    start = utc(2026, 1, 1)
    assert setup.create_windows("minutely", "PT1M", start, start + WINDOWS * timedelta(minutes=1)) == WINDOWS
    setup.create_window("blocked", start, "P1D")
    setup.close()
    in_flight: list[BaseException | None] = []

    stop = threading.Event()
    workers = [Worker(url, table, i, stop) for i in range(WORKERS)]
    for w in workers:
        w.start()
    try:
        wait_for(lambda: _complete_count(url, table) >= WINDOWS // 4, timeout=60, what="a quarter done")
        blocked = BlockedCall(url, table)
        blocked.start()
        blocked.wait_until_blocked()
        own_server.kill()
        in_flight.append(blocked.finish())
        # while it is down, a new store fails fast with a clear message
        with pytest.raises(
            DatabaseUnavailableError, match="cannot connect to PostgreSQL at postgresql://dtc:\\*\\*\\*@"
        ) as info:
            TaskStore(url, table).claim("minutely")
        assert SECRET not in str(info.value)
        own_server.restart()

        done_before_stop = _complete_count(url, table)
        wait_for(
            lambda: _complete_count(url, table) >= done_before_stop + WINDOWS // 4,
            timeout=60,
            what="progress after crash",
        )
        blocked = BlockedCall(url, table)
        blocked.start()
        blocked.wait_until_blocked()
        own_server.stop("fast")
        in_flight.append(blocked.finish())
        time.sleep(0.3)
        own_server.restart()

        wait_for(lambda: _complete_count(url, table) == WINDOWS, timeout=90, what="every window complete")
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)

    # the calls in flight when the server went away failed cleanly, and changed nothing
    assert [type(e) for e in in_flight] == [DatabaseUnavailableError, DatabaseUnavailableError], in_flight
    assert all("lost the connection to PostgreSQL" in str(e) and "retry" in str(e) for e in in_flight)
    _blocked_window_untouched(url, table)

    errors = [e for w in workers for e in w.errors] + in_flight
    unexpected = [e for e in errors if not isinstance(e, DatabaseUnavailableError)]
    assert unexpected == [], unexpected
    for e in errors:
        message = str(e)
        assert SECRET not in message
        assert "PostgreSQL at postgresql://dtc:***@" in message, message

    completed = [c for w in workers for c in w.completed]
    buckets = [b for b, _ in completed]
    assert len(buckets) == len(set(buckets)), "a window was completed twice"
    assert len(buckets) == WINDOWS

    check = TaskStore(url, table)
    try:
        tasks = check.query("minutely")
        assert len(tasks) == WINDOWS
        assert {t.status for t in tasks} == {Status.COMPLETE}
        generation_of = dict(completed)
        assert all(generation_of[t.bucket_time] == t.generation for t in tasks)
        assert check.claim("minutely") == []
    finally:
        check.close()


def test_heartbeat_survives_a_short_restart(own_server: EmbeddedServer) -> None:
    """A holder inside ``with claim:`` keeps its window across a restart shorter than its lease."""
    url = make_conninfo(own_server.url)
    store = TaskStore(url, "hb_tasks", lease_seconds=3, backoff_base=0.0, backoff_max=0.0)
    try:
        store.init_schema()
        store.create_window("call_mom", utc(2026, 12, 1), "P1D")
        [claim] = store.claim("call_mom", worker="holder")
        with claim:
            time.sleep(0.5)
            own_server.stop("fast")
            time.sleep(0.5)
            own_server.restart()
            # renewals resume: the lease moves forward again
            first = store.get("call_mom", claim.bucket_time)
            assert first is not None and first.lease_expires_at is not None
            wait_for(
                lambda: store.get("call_mom", claim.bucket_time).lease_expires_at > first.lease_expires_at,  # type: ignore[union-attr,operator]
                timeout=5,
                what="a renewal after the restart",
            )
            assert not claim.lost
        task = store.get("call_mom", claim.bucket_time)
        assert task is not None and task.status is Status.COMPLETE and task.generation == claim.generation
        assert task.fail_count == 0
    finally:
        store.close()
