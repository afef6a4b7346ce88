"""The SQL API of migration 0003 and the statements docs/sql.md tells other services to run."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from dagster_dtc import Status, TaskStore, cli

UTC = timezone.utc
DAY = timedelta(days=1)
D1 = datetime(2026, 12, 1, tzinfo=UTC)
END = D1 + 7 * DAY
DOCS = Path(__file__).resolve().parents[1] / "docs" / "sql.md"


@pytest.fixture
def admin(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET timezone = 'UTC'")
        yield conn


def call(conn: psycopg.Connection[Any], function: str, *args: Any) -> int:
    row = conn.execute(
        sql.SQL("SELECT {}(%s, %s, %s, %s)").format(sql.Identifier(*function.split("."))), args
    ).fetchone()
    assert row is not None
    return int(row[0])


def scenario(store: TaskStore, admin: psycopg.Connection[Any], name: str) -> None:
    """Seven windows of ``name`` from D1, one per state a reopen or skip must treat differently:
    COMPLETE, SKIP, held (live lease), held (lease expired), exhausted, failed once, untouched."""
    store.create_window(name, D1 + 4 * DAY, "P1D", max_attempts=1)
    store.create_windows(name, "P1D", D1, END)
    claims = store.claim(name, limit=6, worker="phone-1", lease_seconds=300)
    assert [c.bucket_time for c in claims] == [D1 + i * DAY for i in range(6)]
    claims[0].complete("answered")
    claims[1].skip("holiday")
    admin.execute(
        sql.SQL(
            "UPDATE {} SET lease_expires_at = now() - interval '1 minute', revision = revision + 1 "
            "WHERE name = %s AND bucket_time = %s"
        ).format(store.table.identifier),
        (name, D1 + 3 * DAY),
    )
    claims[4].fail("no answer")  # attempt 1 of max 1: waits for a reopen
    claims[5].fail("busy")


def snapshot(store: TaskStore, name: str) -> list[tuple[Any, ...]]:
    return [
        (
            t.bucket_time,
            t.status,
            t.message,
            t.attempt,
            t.fail_count,
            t.generation,
            t.reopen_requested,
            t.reopened_at is not None,
            t.lease_expires_at is not None,
            t.not_before is not None,
        )
        for t in store.query(name)
    ]


# -- the functions ---------------------------------------------------------------------------------


def test_functions_are_security_definer_with_a_pinned_search_path(
    store: TaskStore, admin: psycopg.Connection[Any]
) -> None:
    rows = admin.execute(
        "SELECT proname, prosecdef, proconfig, "
        "       (SELECT count(*) FROM aclexplode(proacl) AS a WHERE a.grantee = 0) AS public_grants, "
        "       pg_get_function_identity_arguments(oid), prorettype::regtype::text "
        "FROM pg_proc WHERE proname IN (%s, %s) ORDER BY proname",
        (f"{store.table.name}_reopen", f"{store.table.name}_skip"),
    ).fetchall()
    assert rows == [
        (
            f"{store.table.name}_{fn}",
            True,
            ["search_path=pg_catalog, pg_temp"],
            0,
            "p_name text, p_start timestamp with time zone, p_end timestamp with time zone, p_reason text",
            "integer",
        )
        for fn in ("reopen", "skip")
    ]


def test_reopen_function_does_what_store_reopen_does(
    store: TaskStore, admin: psycopg.Connection[Any]
) -> None:
    scenario(store, admin, "by_store")
    scenario(store, admin, "by_sql")
    assert store.reopen("by_store", D1, END, "late bill") == 5
    assert call(admin, f"{store.table.name}_reopen", "by_sql", D1, END, "late bill") == 5
    assert snapshot(store, "by_sql") == snapshot(store, "by_store")

    tasks = store.query("by_sql")
    assert [t.status for t in tasks] == [Status.AVAILABLE] * 2 + [Status.ACQUIRED] + [Status.AVAILABLE] * 4
    assert [t.message for t in tasks] == ["late bill"] * 5 + ["busy", None]
    held, expired, exhausted = tasks[2], tasks[3], tasks[4]
    assert held.reopen_requested and held.generation == 1  # its holder keeps it, and must run it again
    assert not expired.reopen_requested and expired.generation == 2  # the dead holder's token is void
    assert exhausted.attempt == 0 and exhausted.fail_count == 1  # claimable again


def test_skip_function_does_what_store_skip_does(store: TaskStore, admin: psycopg.Connection[Any]) -> None:
    scenario(store, admin, "by_store")
    scenario(store, admin, "by_sql")
    assert store.skip("by_store", D1, END, "holiday") == 5
    assert call(admin, f"{store.table.name}_skip", "by_sql", D1, END, "holiday") == 5
    assert snapshot(store, "by_sql") == snapshot(store, "by_store")
    tasks = store.query("by_sql")
    assert [t.status for t in tasks] == [Status.COMPLETE] + [Status.SKIP] * 6
    assert tasks[2].generation == 2  # the holder was fenced off


def test_reason_is_optional_and_the_range_is_half_open(
    store: TaskStore, admin: psycopg.Connection[Any]
) -> None:
    store.create_windows("call_mom", "P1D", D1, END)
    for claim in store.claim("call_mom", limit=7):
        claim.complete("answered")
    fn = sql.Identifier(f"{store.table.name}_reopen")
    row = admin.execute(
        sql.SQL("SELECT {}('call_mom', %s, %s)").format(fn), (D1 + DAY, D1 + 3 * DAY)
    ).fetchone()
    assert row == (2,)
    assert [t.message for t in store.query("call_mom")] == (
        ["answered"] + ["reopened (was COMPLETE)"] * 2 + ["answered"] * 4
    )
    assert call(admin, f"{store.table.name}_reopen", "nobody", D1, END, None) == 0


def test_a_window_reopened_while_held_runs_again(store: TaskStore, admin: psycopg.Connection[Any]) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + DAY)
    [claim] = store.claim("call_mom", worker="phone-1", lease_seconds=300)
    assert call(admin, f"{store.table.name}_reopen", "call_mom", D1, D1 + DAY, "redo") == 1
    assert claim.heartbeat() is True
    assert claim.complete().status is Status.AVAILABLE
    [again] = store.claim("call_mom", worker="phone-2")
    assert again.bucket_time == D1 and again.generation == claim.generation + 1


def test_bad_ranges_and_nulls_are_refused(store: TaskStore, admin: psycopg.Connection[Any]) -> None:
    for fn in ("reopen", "skip"):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be after start"):
            call(admin, f"{store.table.name}_{fn}", "x", D1, D1, None)
        with pytest.raises(psycopg.errors.NullValueNotAllowed):
            call(admin, f"{store.table.name}_{fn}", None, D1, END, None)


def test_the_caller_search_path_cannot_redirect_the_function(
    store: TaskStore, admin: psycopg.Connection[Any]
) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + DAY)
    store.set_status("call_mom", [D1], Status.COMPLETE)
    table = store.table.name
    # A decoy with the same name in the caller's temporary schema, first on its search_path.
    admin.execute(
        sql.SQL(
            "CREATE TEMP TABLE {} (name text, bucket_time timestamptz, status text, message text, "
            "max_attempts int, attempt int)"
        ).format(sql.Identifier(table))
    )
    admin.execute(
        sql.SQL("INSERT INTO pg_temp.{} VALUES ('call_mom', %s, 'COMPLETE', NULL, NULL, 0)").format(
            sql.Identifier(table)
        ),
        (D1,),
    )
    admin.execute("SET search_path = pg_temp, public")
    assert call(admin, f"public.{table}_reopen", "call_mom", D1, D1 + DAY, "x") == 1
    assert store.get("call_mom", D1).status is Status.AVAILABLE  # type: ignore[union-attr]
    decoy = admin.execute(sql.SQL("SELECT status FROM pg_temp.{}").format(sql.Identifier(table))).fetchone()
    assert decoy == ("COMPLETE",)


def test_functions_of_a_schema_qualified_table(database_url: str, admin: psycopg.Connection[Any]) -> None:
    schema = f"s_{uuid.uuid4().hex[:10]}"
    with TaskStore(database_url, f"{schema}.tasks") as store:
        store.init_schema()
        store.create_windows("call_mom", "P1D", D1, D1 + 2 * DAY)
        assert call(admin, f"{schema}.tasks_skip", "call_mom", D1, D1 + 2 * DAY, "holiday") == 2
        assert [t.status for t in store.query("call_mom")] == [Status.SKIP] * 2
        assert call(admin, f"{schema}.tasks_reopen", "call_mom", D1, D1 + DAY, None) == 1
        assert [t.status for t in store.query("call_mom")] == [Status.AVAILABLE, Status.SKIP]
    found = admin.execute(
        "SELECT count(*) FROM pg_proc WHERE pronamespace = %s::regnamespace "
        "AND proname IN ('tasks_reopen', 'tasks_skip')",
        (schema,),
    ).fetchone()
    assert found == (2,)


# -- docs/sql.md -----------------------------------------------------------------------------------


def doc_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)


def doc_block(starting: str) -> str:
    [block] = [b for b in doc_blocks() if b.lstrip().startswith(starting)]
    return block


def for_test(text: str, table: str, role: str = "reopener", password: str = "change-me") -> str:
    text = re.sub(r"\bdtc_tasks", table, text)
    text = re.sub(r"\breopener\b", role, text)
    return text.replace("'change-me'", f"'{password}'")


def test_every_sql_example_in_the_docs_runs(store: TaskStore, admin: psycopg.Connection[Any]) -> None:
    scenario(store, admin, "daily_report")
    blocks = [b for b in doc_blocks() if "CREATE ROLE" not in b]
    assert len(blocks) >= 7
    for block in blocks:
        with admin.transaction(force_rollback=True):
            admin.execute(for_test(block, store.table.name))


def test_the_documented_plain_reopen_update(store: TaskStore, admin: psycopg.Connection[Any]) -> None:
    scenario(store, admin, "daily_report")
    reopen = doc_block("UPDATE dtc_tasks\n   SET status = 'AVAILABLE'")
    assert admin.execute(for_test(reopen, store.table.name)).rowcount == 4  # COMPLETE, SKIP, both held
    tasks = store.query("daily_report")
    assert [t.status for t in tasks] == [Status.AVAILABLE] * 2 + [Status.ACQUIRED] + [Status.AVAILABLE] * 4
    assert [t.message for t in tasks[:4]] == ["late invoices from billing"] * 4
    assert tasks[2].reopen_requested and tasks[2].generation == 1  # held: marked, not handed out
    assert tasks[3].generation == 2  # expired holder fenced off
    assert all(t.attempt == 0 and t.reopened_at is not None for t in tasks[:2])


def test_the_documented_plain_skip_update_matches_store_skip(
    store: TaskStore, admin: psycopg.Connection[Any]
) -> None:
    holiday, after = datetime(2026, 12, 24, tzinfo=UTC), datetime(2026, 12, 27, tzinfo=UTC)
    for name in ("daily_report", "by_store"):
        store.create_windows(name, "P1D", holiday - DAY, after + DAY)
        claims = store.claim(name, limit=2, worker="phone-1", lease_seconds=300)
        claims[0].complete("answered")  # 23rd, outside the range
        # the 24th stays held by phone-1
    skip = doc_block("UPDATE dtc_tasks\n   SET status = 'SKIP'")
    assert admin.execute(for_test(skip, store.table.name)).rowcount == 3
    assert store.skip("by_store", holiday, after, "holiday") == 3
    assert snapshot(store, "daily_report") == snapshot(store, "by_store")
    assert [t.status for t in store.query("daily_report")] == [Status.COMPLETE] + [Status.SKIP] * 3 + [
        Status.AVAILABLE
    ]


@pytest.fixture
def role(admin: psycopg.Connection[Any]) -> Iterator[tuple[str, str]]:
    """A fresh role name and password; the role is dropped afterwards if the test created it."""
    name, password = f"dtc_reopener_{uuid.uuid4().hex[:10]}", secrets.token_hex(12)
    try:
        yield name, password
    finally:
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_least_privilege_role_from_the_docs(
    store: TaskStore,
    admin: psycopg.Connection[Any],
    role: tuple[str, str],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, password = role
    table = store.table.name
    scenario(store, admin, "daily_report")
    admin.execute(for_test(doc_block("CREATE ROLE reopener"), table, name, password))

    with psycopg.connect(make_conninfo(database_url, user=name, password=password), autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (name,)
        # what it may do: reopen through the function, and read
        assert call(conn, f"{table}_reopen", "daily_report", D1, D1 + 2 * DAY, "invoice 42 corrected") == 2
        rows = conn.execute(
            sql.SQL("SELECT status, message FROM {} WHERE name = 'daily_report' ORDER BY bucket_time").format(
                sql.Identifier(table)
            )
        ).fetchall()
        assert rows[:2] == [("AVAILABLE", "invoice 42 corrected")] * 2 and len(rows) == 7
        # and nothing else
        forbidden = [
            sql.SQL("DELETE FROM {}"),
            sql.SQL("INSERT INTO {} (name, bucket_time, bucket_interval) VALUES ('x', now(), 'P1D')"),
            sql.SQL("UPDATE {} SET fail_count = 0"),
            sql.SQL("UPDATE {} SET status = 'AVAILABLE' WHERE name = 'daily_report'"),
            sql.SQL("TRUNCATE {}"),
        ]
        for statement in forbidden:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.format(sql.Identifier(table)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for function"):
            call(conn, f"{table}_skip", "daily_report", D1, END, None)
    assert [t.fail_count for t in store.query("daily_report")] == [0, 0, 0, 0, 1, 1, 0]

    # The CLI as that role: reading works, writing is refused with exit status 1.
    url = make_url(database_url).set(username=name, password=password).render_as_string(hide_password=False)
    assert cli.main(["--database-url", url, "--table", table, "list", "daily_report", "--json"]) == 0
    capsys.readouterr()
    skip = ["skip", "daily_report", "--start", "2026-12-01", "--end", "2026-12-08"]
    assert cli.main(["--database-url", url, "--table", table, *skip]) == 1
    err = capsys.readouterr().err
    assert "permission denied" in err and password not in err and err.count("\n") == 1
