"""Where the DTC table lives: URL resolution, the embedded PostgreSQL default, connection pools.

Resolution order: an explicit URL, then ``DTC_DATABASE_URL``, then the embedded PostgreSQL server
(:mod:`dagster_dtc.embedded`).
"""

from __future__ import annotations

import os
import re
import select
import time
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .embedded import embedded_database_url
from .errors import DatabaseUnavailableError, InvalidDatabaseURLError

DATABASE_URL_ENV = "DTC_DATABASE_URL"


def resolve_database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$DTC_DATABASE_URL``, else the embedded server."""
    chosen = url or os.environ.get(DATABASE_URL_ENV) or None
    if chosen is None:
        return embedded_database_url()
    return normalize_url(chosen)


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise InvalidDatabaseURLError(
            f"database URL {redact(url)!r} cannot be parsed ({exc}); expected "
            "postgresql://user:password@host:5432/dbname"
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidDatabaseURLError(
            f"database URL {redact(url)!r} is not PostgreSQL; expected postgresql://user:password@host/dbname"
        )
    return parsed


def normalize_url(url: str) -> str:
    """Validate ``url`` and strip a SQLAlchemy driver suffix (``postgresql+psycopg://``) for psycopg."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidDatabaseURLError(
            "database URL is empty; expected postgresql://user:password@host/dbname"
        )
    parsed = _parse(url.strip())
    plain = parsed.set(drivername="postgresql")
    return plain.render_as_string(hide_password=False)


# ``password=...`` in a key/value DSN (``host=db password=x``) or a URL query (``?password=x``).
_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)", re.IGNORECASE)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``, safe for logs and error messages."""
    try:
        parsed = make_url(url)
        # An unescaped '@' in the password makes the rest of it look like part of the host.
        rendered = None if "@" in (parsed.host or "") else parsed.render_as_string(hide_password=True)
    except Exception:
        rendered = None
    if rendered is None:
        # Unparseable: everything between '//' and the last '@' of the authority is user:password.
        rendered = url
        scheme, sep, rest = url.partition("//")
        userinfo, at, host = rest.rpartition("@")
        if sep and at:
            user = userinfo.split(":", 1)[0] if ":" in userinfo else None
            rendered = f"{scheme}//{user}:***@{host}" if user is not None else f"{scheme}//***@{host}"
    return _PASSWORD_PARAM.sub(r"\1***", rendered)


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Calendar arithmetic (generate_series over months) happens in the session time zone, and
    # intervals are read back as ISO-8601 text; neither may depend on server defaults.
    conn.execute("SET timezone = 'UTC'")
    conn.execute("SET intervalstyle = 'iso_8601'")


# A pooled connection idle for longer than this gets a full round-trip check before it is handed out.
CHECK_IDLE_SECONDS = 30.0


def _has_input(fd: int) -> bool:
    """True if the socket has something to read (or hung up) right now, without waiting."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


def check_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check before handing out a connection, without a round trip in the common case.

    An idle autocommit connection has nothing to read; a server that stops, restarts, crashes or
    terminates the backend closes the socket (usually after a FATAL message), which makes it readable.
    Only then, or when the connection sat unused for CHECK_IDLE_SECONDS (a peer lost without a FIN,
    e.g. behind a NAT that dropped it), pay psycopg_pool's round-trip check; a failure makes the pool
    replace the connection. Saves one round trip per store call over checking every checkout.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    now = time.monotonic()
    last = getattr(conn, "_dtc_checked_at", None)
    if last is None or now - last > CHECK_IDLE_SECONDS or _has_input(conn.pgconn.socket):
        ConnectionPool.check_connection(conn)
    conn._dtc_checked_at = now  # type: ignore[attr-defined]


def open_pool(url: str, max_size: int = 4, name: str = "dagster-dtc") -> ConnectionPool:
    """An autocommit connection pool; connections are checked before use so a restarted server heals."""
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "application_name": name[:63], "connect_timeout": 10},
        configure=_configure,
        check=check_connection,
        open=False,
        name=name,
        reconnect_timeout=30,
        timeout=30,
    )
    try:
        pool.open(wait=True, timeout=15)
    except Exception as exc:
        pool.close()
        raise DatabaseUnavailableError(
            f"cannot connect to PostgreSQL at {redact(url)}: {exc}. Check that the server is running and "
            f"that {DATABASE_URL_ENV} (or database_url) is right"
        ) from None
    return pool
