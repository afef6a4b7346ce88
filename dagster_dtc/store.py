"""TaskStore: create, find, claim, finish and reopen DTC windows in one PostgreSQL table."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import RowFactory, RowMaker, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from . import schema
from .claim import Claim
from .database import normalize_url, open_pool, redact, resolve_database_url
from .errors import (
    DatabaseUnavailableError,
    IntervalMismatchError,
    InvalidInputError,
    SchemaMissingError,
    StaleClaimError,
    WindowHeldError,
    WindowNotAvailableError,
    WindowNotFoundError,
)
from .intervals import Interval, require_aware
from .models import Status, Task
from .queries import Queries

MAX_NAME_LENGTH = 512
MAX_WORKER_LENGTH = 512
MAX_CLAIM_BATCH = 100_000
DEFAULT_LEASE_SECONDS = 30.0
DEFAULT_MAX_ATTEMPTS = 10


def default_worker() -> str:
    """``host:pid``: what ``acquired_by`` shows when the caller names no worker."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"{what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH} (it is part of the "
            "primary key)"
        )
    if "\x00" in name:
        raise InvalidInputError(
            f"{what} {name[:40]!r} contains a NUL character, which PostgreSQL cannot store"
        )
    return name


def _check_text(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    # PostgreSQL text cannot hold NUL; keep the rest of the message rather than refuse the transition.
    return value.replace("\x00", "\\0")


class TaskStore:
    """The DTC window table on PostgreSQL, usable from any Python worker (no Dagster needed).

    Args:
        database_url: ``postgresql://user:password@host:5432/db``. Defaults to ``$DTC_DATABASE_URL``,
            else an embedded PostgreSQL server kept in ``$DTC_HOME`` (``~/.local/share/dagster-dtc``).
        table: table name, optionally schema-qualified (``ops.dtc_tasks``).
        lease_seconds: how long a claim stays valid without a heartbeat. A worker that dies loses
            its window after at most this long (plus the next claim's reap).
        max_attempts: claims allowed per window before it waits for a reopen; ``None`` for no limit.
        backoff_base / backoff_max: after failed attempt ``n`` the window waits
            ``min(backoff_max, backoff_base * 2 ** (n - 1))`` seconds before it can be claimed again.

    Example:
        .. code-block:: python

            from datetime import datetime, timezone
            from dagster_dtc import TaskStore

            store = TaskStore("postgresql://dtc:secret@db/dtc")
            store.init_schema()
            store.create_windows("call_mom", "P1D",
                                 datetime(2026, 12, 1, tzinfo=timezone.utc),
                                 datetime(2026, 12, 8, tzinfo=timezone.utc))
            for claim in store.claim("call_mom", limit=1, worker="phone-1"):
                with claim:                      # renews the lease; fails the window on error
                    print("calling for", claim.window_start, "to", claim.window_end)
    """

    def __init__(
        self,
        database_url: str | None = None,
        table: str = "dtc_tasks",
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_attempts: int | None = DEFAULT_MAX_ATTEMPTS,
        backoff_base: float = 10.0,
        backoff_max: float = 3600.0,
        pool_size: int = 4,
    ) -> None:
        self.table = schema.TableName.parse(table)
        self._explicit_url = normalize_url(database_url) if database_url else None
        if not (lease_seconds > 0):
            raise InvalidInputError(f"lease_seconds must be positive, got {lease_seconds!r}")
        if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
            raise InvalidInputError(f"max_attempts must be a positive integer or None, got {max_attempts!r}")
        if backoff_base < 0 or backoff_max < backoff_base:
            raise InvalidInputError(
                f"backoff needs 0 <= backoff_base <= backoff_max, got {backoff_base!r} and {backoff_max!r}"
            )
        self.lease_seconds = float(lease_seconds)
        self.max_attempts = max_attempts
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.pool_size = pool_size
        self._queries = Queries(self.table)
        self._sql_cache: dict[str, bytes] = {}
        self._pool: ConnectionPool | None = None
        self._url: str | None = None
        self._lock = threading.Lock()
        self._last_reap = 0.0

    # -- connections ---------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        """The resolved URL (starting the embedded server if none was configured)."""
        if self._url is None:
            self._url = self._explicit_url or resolve_database_url(None)
        return self._url

    @property
    def safe_url(self) -> str:
        """The URL without its password, for logs."""
        return redact(self._url or self._explicit_url or "embedded")

    def _get_pool(self) -> ConnectionPool:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    url = self.database_url
                    try:
                        # Fail fast with a clear message instead of letting the pool retry for long.
                        psycopg.connect(url, connect_timeout=10).close()
                    except psycopg.Error as exc:
                        raise DatabaseUnavailableError(
                            f"cannot connect to PostgreSQL at {redact(url)}: {str(exc).strip()}"
                        ) from None
                    self._pool = open_pool(url, max_size=self.pool_size)
        return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled autocommit connection; connection failures become DatabaseUnavailableError."""
        pool = self._get_pool()
        try:
            # getconn/putconn rather than pool.connection(): that one also enters `with conn`, whose
            # exit sends a COMMIT round through psycopg even on an autocommit connection. putconn
            # still rolls back a transaction left open and replaces a broken connection.
            conn = pool.getconn()
            try:
                yield conn
            finally:
                pool.putconn(conn)
        except psycopg.errors.UndefinedTable as exc:
            raise SchemaMissingError(
                f"table {self.table} does not exist in {redact(self.database_url)}; create it with "
                "TaskStore.init_schema() or `dagster-dtc init`"
            ) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            if isinstance(exc, psycopg.errors.LockNotAvailable):
                raise
            raise DatabaseUnavailableError(
                f"lost the connection to PostgreSQL at {redact(self.database_url)}: {str(exc).strip()}. "
                "Nothing was changed by the failed statement unless its transaction committed; retry."
            ) from exc

    def _sql(self, conn: psycopg.Connection[Any], query: str) -> bytes:
        # Composing a query (quoting the table name) is redone by psycopg on every execute; do it once.
        text = self._sql_cache.get(query)
        if text is None:
            text = self._sql_cache[query] = self._queries[query].as_bytes(conn)
        return text

    @staticmethod
    def _cursor(conn: psycopg.Connection[Any], rows: RowFactory[Any] = dict_row) -> psycopg.Cursor[Any]:
        # One cursor per pooled connection and row factory, reused by every call that borrows it
        # (the pool lends a connection to one thread at a time): a new one costs ~20 us, a sixth of
        # a call.
        cursors: dict[Any, psycopg.Cursor[Any]] | None = getattr(conn, "_dtc_cursors", None)
        if cursors is None:
            cursors = conn._dtc_cursors = {}  # type: ignore[attr-defined]
        cur = cursors.get(rows)
        if cur is None or cur.closed:
            cur = cursors[rows] = conn.cursor(row_factory=rows)
        return cur

    def _fetch(self, query: str, params: dict[str, Any], rows: RowFactory[Any]) -> list[Any]:
        with self.connection() as conn:
            cur = self._cursor(conn, rows)
            cur.execute(self._sql(conn, query), params)
            # not cur.description: that builds a Column object per column on every call (~25 us for 18)
            result = cur.pgresult
            return cur.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []

    def _rows(self, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self._fetch(query, params, dict_row)

    def _tasks(self, query: str, params: dict[str, Any]) -> list[Task]:
        """Whole rows (queries that select or return ``{columns}``) as Task records."""
        return self._fetch(query, params, _task_row)

    def _count(self, query: str, params: dict[str, Any]) -> int:
        with self.connection() as conn:
            cur = self._cursor(conn)
            cur.execute(self._sql(conn, query), params)
            return cur.rowcount

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> TaskStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema --------------------------------------------------------------------------------

    def init_schema(self) -> list[str]:
        """Create or upgrade the table (idempotent, safe to race). Returns the migrations applied."""
        with self.connection() as conn:
            return schema.migrate(conn, self.table)

    # -- creating windows ----------------------------------------------------------------------

    def _check_interval(self, name: str, grid: Interval) -> None:
        rows = self._rows("interval_of_name", {"name": name})
        if rows:
            existing = Interval.parse(rows[0]["bucket_interval"])
            if (existing.months, existing.fixed) != (grid.months, grid.fixed):
                raise IntervalMismatchError(
                    f"windows of {name!r} already use interval {existing.iso}; cannot add {grid.iso} "
                    "windows to the same name. Use another name for a different cadence"
                )

    def _max_attempts(self, value: int | None) -> int | None:
        return self.max_attempts if value is None else value

    def create_window(
        self,
        name: str,
        bucket_time: datetime,
        interval: str | Interval,
        *,
        origin: datetime | None = None,
        worker: str | None = None,
        max_attempts: int | None = None,
    ) -> bool:
        """Create one window; returns False if it already existed (left untouched)."""
        check_name(name)
        grid = Interval.parse(interval, origin)
        bucket = grid.check_bucket(bucket_time)
        self._check_interval(name, grid)
        params = {
            "name": name,
            "bucket_time": bucket,
            "interval": grid.iso,
            "worker": check_name(worker or default_worker(), "worker"),
            "max_attempts": self._max_attempts(max_attempts),
        }
        return self._count("create_window", params) == 1

    def create_windows(
        self,
        name: str,
        interval: str | Interval,
        start: datetime,
        end: datetime,
        *,
        origin: datetime | None = None,
        worker: str | None = None,
        max_attempts: int | None = None,
    ) -> int:
        """Create every window whose bucket starts in ``[start, end)`` in one statement.

        Idempotent: existing windows keep their state. Returns how many windows were new.
        """
        check_name(name)
        grid = Interval.parse(interval, origin)
        span = grid.bounds(start, end)
        if span is None:
            return 0
        self._check_interval(name, grid)
        params = {
            "name": name,
            "interval": grid.iso,
            "first": span[0],
            "last": span[1],
            "worker": check_name(worker or default_worker(), "worker"),
            "max_attempts": self._max_attempts(max_attempts),
        }
        try:
            return self._count("create_windows", params)
        except psycopg.errors.UniqueViolation:
            # Another process created some of these windows at the same moment; nothing was inserted.
            return self._count("create_windows_racing", params)

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str, bucket_time: datetime) -> Task | None:
        """The window of ``name`` starting at ``bucket_time``, or None."""
        tasks = self._tasks("get", {"name": check_name(name), "bucket_time": require_aware(bucket_time)})
        return tasks[0] if tasks else None

    def query(
        self,
        name: str | None = None,
        statuses: Iterable[str | Status] | None = None,
        bucket_start: datetime | None = None,
        bucket_end: datetime | None = None,
        *,
        acquired_start: datetime | None = None,
        acquired_end: datetime | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        """Windows matching every given filter, ordered by name and bucket_time."""
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise InvalidInputError(f"limit must be None or an integer >= 0, got {limit!r}")
        status_list = None if statuses is None else [Status.parse(s).value for s in statuses]
        params = {
            "name": None if name is None else check_name(name),
            "statuses": status_list,
            "bucket_start": _aware_or_none(bucket_start, "bucket_start"),
            "bucket_end": _aware_or_none(bucket_end, "bucket_end"),
            "acquired_start": _aware_or_none(acquired_start, "acquired_start"),
            "acquired_end": _aware_or_none(acquired_end, "acquired_end"),
            "limit": limit,
        }
        return self._tasks("query", params)

    def stats(self, name: str | None = None) -> list[dict[str, Any]]:
        """Per name: count per status, oldest AVAILABLE window, highest fail_count."""
        return self._rows("stats", {"name": None if name is None else check_name(name)})

    def explain_empty_claim(self, name: str) -> str:
        """Why ``claim(name)`` found nothing, in words (for sensors' skip reasons and the CLI)."""
        row = self._rows("claim_diagnosis", {"name": check_name(name)})[0]
        if not row["any_exist"]:
            return f"no windows of {name!r} exist yet"
        parts = []
        if row["held"]:
            parts.append(f"{row['held']} held by workers")
        if row["backing_off"]:
            parts.append(f"{row['backing_off']} waiting out a retry backoff")
        if row["exhausted"]:
            parts.append(f"{row['exhausted']} over max attempts (reopen to retry)")
        claimable = row["available"] - row["backing_off"] - row["exhausted"]
        if claimable > 0:
            detail = f" ({', '.join(parts)})" if parts else ""
            return f"{claimable} windows of {name!r} are claimable{detail}"
        if not parts:
            return f"every window of {name!r} is COMPLETE or SKIP; none due"
        return f"nothing claimable for {name!r}: " + ", ".join(parts)

    # -- claiming ------------------------------------------------------------------------------

    def _lease(self, lease_seconds: float | None) -> float:
        value = self.lease_seconds if lease_seconds is None else float(lease_seconds)
        if not value > 0:
            raise InvalidInputError(f"lease_seconds must be positive, got {lease_seconds!r}")
        return value

    def _backoff(self) -> dict[str, float]:
        return {"backoff_base": self.backoff_base, "backoff_max": self.backoff_max}

    def reap(self, name: str | None = None) -> int:
        """Free windows whose lease expired (their holder died): AVAILABLE, fail_count + 1."""
        params = {"name": None if name is None else check_name(name), **self._backoff()}
        self._last_reap = time.monotonic()
        return len(self._rows("reap_expired", params))

    def claim(
        self,
        name: str,
        limit: int = 1,
        worker: str | None = None,
        *,
        newest_first: bool = False,
        lease_seconds: float | None = None,
    ) -> list[Claim]:
        """Claim up to ``limit`` AVAILABLE windows of ``name`` (oldest first unless ``newest_first``).

        Windows in their retry backoff or past ``max_attempts`` are passed over; windows locked by a
        concurrent claimer are skipped, never waited for. Returns the claims in bucket order.
        """
        check_name(name)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_CLAIM_BATCH:
            raise InvalidInputError(f"limit must be an integer from 1 to {MAX_CLAIM_BATCH}, got {limit!r}")
        who = check_name(worker or default_worker(), "worker")
        lease = self._lease(lease_seconds)
        # Reaping costs an index probe; once a second per process keeps the bound on a dead worker's
        # window at lease + 1 s without taxing every claim.
        if time.monotonic() - self._last_reap >= min(1.0, lease / 4):
            self.reap(name)
        tasks = self._tasks(
            "claim:desc" if newest_first else "claim",
            {"name": name, "limit": limit, "worker": who, "lease": lease},
        )
        tasks.sort(key=_bucket_time, reverse=newest_first)  # UPDATE ... RETURNING keeps no order
        return [Claim(self, t, who, lease) for t in tasks]

    def acquire(
        self,
        name: str,
        bucket_time: datetime,
        worker: str | None = None,
        *,
        rerun_finished: bool = False,
        lease_seconds: float | None = None,
    ) -> Claim:
        """Acquire one given window now, or raise at once.

        Raises WindowHeldError if another worker holds it (or a transaction has it locked: NOWAIT),
        WindowNotAvailableError if it is COMPLETE/SKIP and ``rerun_finished`` is False, and
        WindowNotFoundError if it does not exist. A holder whose lease expired is taken over and
        its attempt counted as failed. Backoff and max_attempts do not apply to an explicit acquire.
        """
        check_name(name)
        bucket = require_aware(bucket_time, "bucket_time")
        who = check_name(worker or default_worker(), "worker")
        lease = self._lease(lease_seconds)
        with self.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            try:
                cur.execute(self._queries["lock_window"], {"name": name, "bucket_time": bucket})
            except psycopg.errors.LockNotAvailable:
                raise WindowHeldError(
                    f"window {name!r} {bucket.isoformat()} is being changed by another transaction; "
                    "try again shortly"
                ) from None
            row = cur.fetchone()
            if row is None:
                raise WindowNotFoundError(
                    f"no window {name!r} at {bucket.isoformat()}; create it first "
                    "(create_window or create_windows)"
                )
            task = Task.from_row(row)
            fail_increment, message = 0, None
            if task.status is Status.ACQUIRED:
                if not row["lease_expired"]:
                    until = task.lease_expires_at.isoformat() if task.lease_expires_at else "no lease"
                    raise WindowHeldError(
                        f"window {name!r} {bucket.isoformat()} is held by {task.acquired_by} "
                        f"(claim {task.generation}, lease until {until}); wait for it to finish or expire"
                    )
                fail_increment = 1
                message = f"lease of {task.acquired_by} expired; taken over by {who}"
            elif task.status in (Status.COMPLETE, Status.SKIP):
                if not rerun_finished:
                    raise WindowNotAvailableError(
                        f"window {name!r} {bucket.isoformat()} is already {task.status.value}; "
                        "pass rerun_finished=True (or reopen it) to run it again"
                    )
                message = f"re-run of a {task.status.value} window requested by {who}"
            cur.execute(
                self._queries["acquire_locked"],
                {
                    "name": name,
                    "bucket_time": bucket,
                    "worker": who,
                    "lease": lease,
                    "fail_increment": fail_increment,
                    "message": message,
                },
            )
            acquired = Task.from_row(cur.fetchone())  # type: ignore[arg-type]
        return Claim(self, acquired, who, lease)

    def find_or_create_and_acquire(
        self,
        name: str,
        interval: str | Interval,
        *,
        origin: datetime | None = None,
        lag: int = 0,
        backlog: int = 0,
        now: datetime | None = None,
        worker: str | None = None,
        newest_first: bool = False,
    ) -> Claim | None:
        """The Java ``TaskSpecification.findOrCreateAndAcquire``: make sure the due windows exist,
        then claim one.

        The current window is the one ``lag`` intervals before the one containing ``now``; the
        ``backlog`` windows before it are created too. Returns None when all are taken or done.
        """
        grid = Interval.parse(interval, origin)
        if lag < 0 or backlog < 0:
            raise InvalidInputError(f"lag and backlog must be >= 0, got lag={lag}, backlog={backlog}")
        current = grid.shift(grid.floor(now or self.now()), -lag)
        self.create_windows(name, grid, grid.shift(current, -backlog), grid.next(current), worker=worker)
        claims = self.claim(name, 1, worker, newest_first=newest_first)
        return claims[0] if claims else None

    # -- transitions ---------------------------------------------------------------------------

    def _token_params(self, claim: Claim) -> dict[str, Any]:
        return {"name": claim.name, "bucket_time": claim.bucket_time, "generation": claim.generation}

    def _stale(self, claim: Claim, action: str) -> StaleClaimError:
        current = self.get(claim.name, claim.bucket_time)
        if current is None:
            state = "the row no longer exists"
        else:
            state = f"it is now {current.status.value} at generation {current.generation}"
            if current.acquired_by:
                state += f" (acquired_by {current.acquired_by})"
        return StaleClaimError(
            f"cannot {action} window {claim.name!r} {claim.bucket_time.isoformat()} with claim "
            f"{claim.generation}: {state}. The window was reopened, reclaimed after the lease expired, "
            "or finished elsewhere; nothing was changed",
            current,
        )

    def _finish(self, claim: Claim, status: Status, message: str | None) -> Task:
        params = {
            **self._token_params(claim),
            "status": status.value,
            "message": _check_text(message, "message"),
        }
        tasks = self._tasks("finish", params)
        if not tasks:
            raise self._stale(claim, status.value.lower())
        return tasks[0]

    def _fail(self, claim: Claim, message: str | None) -> Task:
        params = {
            **self._token_params(claim),
            "message": _check_text(message, "message") or "failed",
            **self._backoff(),
        }
        tasks = self._tasks("fail", params)
        if not tasks:
            raise self._stale(claim, "fail")
        return tasks[0]

    def _heartbeat(self, claim: Claim, worker: str | None = None) -> bool:
        params = {**self._token_params(claim), "lease": claim.lease_seconds, "worker": worker}
        rows = self._rows("heartbeat", params)
        if not rows:
            raise self._stale(claim, "renew")
        return bool(rows[0]["reopen_requested"])

    def resume(
        self,
        name: str,
        bucket_time: datetime,
        generation: int,
        worker: str,
        *,
        lease_seconds: float | None = None,
    ) -> Claim:
        """Take over a claim by its token from another process (e.g. the sensor's claim, picked up by
        the run it launched): the holder becomes ``worker`` and the lease is renewed.

        Raises StaleClaimError when ``generation`` is not the window's current claim.
        """
        task = self.get(name, bucket_time)
        if task is None:
            raise WindowNotFoundError(f"no window {name!r} at {require_aware(bucket_time).isoformat()}")
        claim = Claim(self, task, check_name(worker, "worker"), self._lease(lease_seconds))
        claim.generation = generation
        self._heartbeat(claim, worker)
        return claim

    def held_by(self, name: str, worker: str) -> list[Task]:
        """Windows of ``name`` currently held by ``worker`` (status ACQUIRED)."""
        return self._tasks("held_by", {"name": check_name(name), "worker": check_name(worker, "worker")})

    def renew_many(
        self,
        name: str,
        worker: str,
        tokens: Iterable[tuple[datetime, int]],
        *,
        lease_seconds: float | None = None,
    ) -> dict[tuple[datetime, int], bool]:
        """Renew the leases of many claims ``worker`` holds on windows of ``name``, in one statement.

        ``tokens`` are ``(bucket_time, generation)`` pairs. A claim is renewed only while its window
        is still ACQUIRED by ``worker`` under that generation; the others are stale and left as they
        are. Returns the renewed ``(bucket_time, generation)`` pairs, each mapped to whether a reopen
        was requested meanwhile (what :meth:`Claim.heartbeat` returns for one claim).
        """
        pairs = [(require_aware(b, "bucket_time"), int(g)) for b, g in tokens]
        if not pairs:
            return {}
        params = {
            "name": check_name(name),
            "worker": check_name(worker, "worker"),
            "bucket_times": [b for b, _ in pairs],
            "generations": [g for _, g in pairs],
            "lease": self._lease(lease_seconds),
        }
        return {
            (r["bucket_time"], r["generation"]): bool(r["reopen_requested"])
            for r in self._rows("renew_many", params)
        }

    def adopt(
        self,
        name: str,
        bucket_time: datetime,
        generation: int,
        worker: str,
        holders: Sequence[str],
        *,
        lease_seconds: float | None = None,
    ) -> Claim:
        """Take over claim ``generation`` of a window from one of ``holders`` (or keep it, when
        ``worker`` is among them): the holder becomes ``worker`` and the lease is renewed.

        Raises StaleClaimError, changing nothing, when the token is not the window's current claim
        or the window is held by someone not in ``holders``.
        """
        lease = self._lease(lease_seconds)
        who = check_name(worker, "worker")
        params = {
            "name": check_name(name),
            "bucket_time": require_aware(bucket_time, "bucket_time"),
            "generation": generation,
            "worker": who,
            "holders": list(holders),
            "lease": lease,
        }
        tasks = self._tasks("adopt", params)
        if not tasks:
            task = self.get(name, bucket_time)
            placeholder = Claim(self, task, who, lease) if task else None
            if placeholder is None:
                raise WindowNotFoundError(f"no window {name!r} at {params['bucket_time'].isoformat()}")
            placeholder.generation = generation
            raise self._stale(placeholder, "adopt")
        return Claim(self, tasks[0], who, lease)

    # -- reopening -----------------------------------------------------------------------------

    def reopen(self, name: str, start: datetime, end: datetime, reason: str | None = None) -> int:
        """Make the COMPLETE/SKIP (and exhausted) windows of ``[start, end)`` AVAILABLE again.

        Equivalent to the plain-SQL reopen other systems use. A window held right now is marked and
        runs again after its holder finishes. Returns how many windows changed.
        """
        s, e = _range(start, end)
        return self._count(
            "reopen",
            {"name": check_name(name), "start": s, "end": e, "reason": _check_text(reason, "reason")},
        )

    def set_status(
        self,
        name: str,
        bucket_times: Sequence[datetime],
        status: str | Status,
        message: str | None = None,
    ) -> int:
        """Set the status of several windows at once (the Java ``setTaskStatus``).

        Goes through the same rules as an external UPDATE: AVAILABLE on a held window marks it for
        re-run; COMPLETE/SKIP on a held window fences its holder. Returns how many rows changed.
        """
        times = [require_aware(t, "bucket_time") for t in bucket_times]
        params = {
            "name": check_name(name),
            "bucket_times": times,
            "status": Status.parse(status).value,
            "message": _check_text(message, "message"),
        }
        return self._count("set_status", params)

    def skip(self, name: str, start: datetime, end: datetime, reason: str | None = None) -> int:
        """Mark every window of ``[start, end)`` that is not COMPLETE or already SKIP as SKIP."""
        s, e = _range(start, end)
        tasks = self.query(name, [Status.AVAILABLE, Status.ACQUIRED], s, e)
        if not tasks:
            return 0
        return self.set_status(name, [t.bucket_time for t in tasks], Status.SKIP, reason)

    def now(self) -> datetime:
        """The database clock: every lease and backoff is measured against it, never the local one."""
        with self.connection() as conn:
            row = conn.execute("SELECT now()").fetchone()
            assert row is not None
            return row[0]


def _task_row(cursor: psycopg.Cursor[Any]) -> RowMaker[Task]:
    return Task.from_values


def _bucket_time(task: Task) -> datetime:
    return task.bucket_time


def _aware_or_none(value: datetime | None, what: str) -> datetime | None:
    return None if value is None else require_aware(value, what)


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    s, e = require_aware(start, "start"), require_aware(end, "end")
    if e <= s:
        raise InvalidInputError(f"end {e.isoformat()} must be after start {s.isoformat()}")
    return s, e
