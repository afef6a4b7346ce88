"""The dagster-dtc command line, run in-process through main() and once as the installed script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from dagster_dtc import Status, Task, TaskStore, cli

UTC = timezone.utc
DAY = timedelta(days=1)
D1 = datetime(2026, 12, 1, tzinfo=UTC)
UNREACHABLE = "postgresql://u:secret@127.0.0.1:1/x"


@dataclass
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], database_url: str, table_name: str) -> Run:
    """``run("list", "x")`` runs ``dagster-dtc --database-url URL --table T list x`` in-process."""

    def _run(*args: str, url: str | None = database_url, table: str | None = table_name) -> Result:
        argv = [*(["--database-url", url] if url else []), *(["--table", table] if table else []), *args]
        code = cli.main(argv)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return _run


def one_line_error(result: Result, code: int) -> str:
    """The run failed with ``code``, printed nothing on stdout and exactly one line on stderr."""
    assert result.code == code, result
    assert result.out == ""
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    return result.err


def statuses(store: TaskStore, name: str) -> list[str]:
    return [t.status.value for t in store.query(name)]


# -- init ------------------------------------------------------------------------------------------


def test_init_creates_then_reports_up_to_date(run: Run, table_name: str, database_url: str) -> None:
    first = run("init")
    assert first.code == 0 and first.err == ""
    assert first.out.startswith(f"applied 3 migration(s) to {table_name} at ")
    assert first.out.rstrip().endswith("0001_java_table, 0002_claims_and_leases, 0003_sql_api")
    second = run("init")
    assert second.code == 0
    assert "is already up to date (schema version 3)" in second.out
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table_name,)).fetchone() == (True,)


def test_init_of_a_schema_qualified_table(run: Run, table_name: str) -> None:
    result = run("init", table=f"s_{table_name}.tasks")
    assert result.code == 0 and f"to s_{table_name}.tasks at" in result.out


def test_the_url_printed_by_init_hides_the_password(run: Run, database_url: str) -> None:
    from sqlalchemy.engine import make_url

    with_password = make_url(database_url).set(password="hunter2").render_as_string(hide_password=False)
    result = run("init", url=with_password)  # trust auth on the test server ignores the password
    if result.code == 0:
        assert "hunter2" not in result.out and "***" in result.out
    else:  # a server with password auth refuses it: the message must not leak it either
        assert "hunter2" not in result.err


# -- create ----------------------------------------------------------------------------------------


def test_create_reports_new_windows_and_is_idempotent(run: Run, store: TaskStore) -> None:
    result = run("create", "call_mom", "--interval", "P1D", "--start", "2026-12-01", "--end", "2027-01-01")
    assert result.code == 0
    assert result.out == (
        "created 31 new windows of 'call_mom' (P1D in [2026-12-01T00:00:00Z, 2027-01-01T00:00:00Z)); "
        "0 of the 31 in range already existed\n"
    )
    again = run("create", "call_mom", "--interval", "P1D", "--start", "2026-11-30", "--end", "2027-01-01")
    assert again.out.startswith("created 1 new windows of 'call_mom'")
    assert "31 of the 32 in range already existed" in again.out
    tasks = store.query("call_mom")
    assert [t.bucket_time for t in tasks] == [D1 - DAY + i * DAY for i in range(32)]
    assert {t.bucket_interval for t in tasks} == {"P1D"}


def test_create_with_origin_and_zoned_times(run: Run, store: TaskStore) -> None:
    result = run(
        "create",
        "shifts",
        "--interval",
        "PT8H",
        "--origin",
        "2026-01-01T06:00:00+00:00",
        "--start",
        "2026-12-01T01:00:00+01:00",
        "--end",
        "2026-12-02T00:00:00Z",
    )
    assert result.code == 0, result.err
    assert [t.bucket_time.hour for t in store.query("shifts")] == [6, 14, 22]


def test_create_of_an_empty_range_creates_nothing(run: Run, store: TaskStore) -> None:
    result = run("create", "monthly", "--interval", "P1M", "--start", "2026-12-02", "--end", "2026-12-31")
    assert result.code == 0 and result.out.startswith("created 0 new windows")
    assert store.query("monthly") == []


def test_create_shows_progress_on_a_terminal(
    run: Run, store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "CREATE_CHUNK", 10)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    result = run(
        "create", "hourly", "--interval", "PT1H", "--start", "2026-12-01", "--end", "2026-12-02T01:00:00Z"
    )
    assert result.code == 0
    assert result.err.count("\r") == 3
    assert result.err.endswith("\rdagster-dtc create: 25/25 windows (100%)\n")
    assert "10/25 windows (40%)" in result.err
    assert "created 25 new windows" in result.out
    tasks = store.query("hourly")
    assert [t.bucket_time for t in tasks] == [D1 + timedelta(hours=i) for i in range(25)]


def test_create_in_pieces_keeps_calendar_months_whole(
    run: Run, store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "CREATE_CHUNK", 5)
    result = run("create", "monthly", "--interval", "P1M", "--start", "2026-01-01", "--end", "2027-03-01")
    assert result.code == 0 and result.err == ""  # no progress when stderr is not a terminal
    assert "created 14 new windows" in result.out
    assert [(t.bucket_time.year, t.bucket_time.month, t.bucket_time.day) for t in store.query("monthly")] == [
        (2026 + m // 12, m % 12 + 1, 1) for m in range(14)
    ]


def test_create_up_to_the_end_of_time(run: Run, store: TaskStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "CREATE_CHUNK", 5)
    result = run("create", "yearly", "--interval", "P1Y", "--start", "9990-01-01", "--end", "9999-12-31")
    assert result.code == 0, result.err
    assert "created 10 new windows" in result.out
    assert [t.bucket_time.year for t in store.query("yearly")] == list(range(9990, 10000))
    assert run("calendar", "yearly").code == 0


def test_create_refuses_a_second_interval_for_a_name(run: Run, store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + DAY)
    result = run("create", "call_mom", "--interval", "PT1H", "--start", "2026-12-01", "--end", "2026-12-02")
    err = one_line_error(result, 2)
    assert "already use interval P1D" in err


# -- list ------------------------------------------------------------------------------------------


@pytest.fixture
def week(store: TaskStore) -> TaskStore:
    """call_mom 2026-12-01..07: COMPLETE, SKIP, ACQUIRED by phone-1, failed once, then AVAILABLE."""
    store.create_windows("call_mom", "P1D", D1, D1 + 7 * DAY)
    claims = store.claim("call_mom", limit=4, worker="phone-1")
    claims[0].complete("answered")
    claims[1].skip("holiday")
    claims[3].fail("no answer")
    return store


def test_list_prints_one_line_per_window(run: Run, week: TaskStore) -> None:
    result = run("list", "call_mom")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["BUCKET", "STATUS", "FAILS", "ACQUIRED_BY", "MESSAGE"]
    assert len(lines) == 8
    assert re.split(r"\s{2,}", lines[1]) == ["2026-12-01T00:00:00Z", "COMPLETE", "0", "phone-1", "answered"]
    assert re.split(r"\s{2,}", lines[2]) == ["2026-12-02T00:00:00Z", "SKIP", "0", "phone-1", "holiday"]
    assert re.split(r"\s{2,}", lines[3]) == ["2026-12-03T00:00:00Z", "ACQUIRED", "0", "phone-1"]
    assert re.split(r"\s{2,}", lines[4]) == ["2026-12-04T00:00:00Z", "AVAILABLE", "1", "phone-1", "no answer"]
    assert re.split(r"\s{2,}", lines[7]) == ["2026-12-07T00:00:00Z", "AVAILABLE", "0", "-"]


def test_list_filters(run: Run, week: TaskStore) -> None:
    def buckets(*args: str) -> list[str]:
        result = run("list", "call_mom", *args)
        assert result.code == 0, result.err
        return [line.split()[0] for line in result.out.splitlines()[1:]]

    assert buckets("--status", "complete,SKIP") == ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"]
    assert buckets("--status", "acquired", "--status", "COMPLETE") == [
        "2026-12-01T00:00:00Z",
        "2026-12-03T00:00:00Z",
    ]
    assert buckets("--start", "2026-12-06") == ["2026-12-06T00:00:00Z", "2026-12-07T00:00:00Z"]
    assert buckets("--start", "2026-12-02", "--end", "2026-12-03T00:00:01Z") == [
        "2026-12-02T00:00:00Z",
        "2026-12-03T00:00:00Z",
    ]
    assert buckets("--limit", "2") == ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"]


def test_list_json_is_the_task_records(run: Run, week: TaskStore) -> None:
    result = run("list", "call_mom", "--json")
    assert result.code == 0 and result.err == ""
    records = json.loads(result.out)
    assert [list(r) for r in records] == [list(Task.__dataclass_fields__)] * 7
    assert records == [t.as_dict() for t in week.query("call_mom")]
    assert records[0]["status"] == "COMPLETE" and records[0]["bucket_time"] == "2026-12-01T00:00:00+00:00"
    assert records[3]["fail_count"] == 1 and records[3]["message"] == "no answer"
    empty = run("list", "call_mom", "--status", "SKIP", "--start", "2026-12-05", "--json")
    assert empty.code == 0 and json.loads(empty.out) == []


def test_list_of_nothing_says_so_on_stderr(run: Run, store: TaskStore) -> None:
    result = run("list", "nobody", "--start", "2026-12-01")
    assert result.code == 0 and result.out == ""
    assert result.err == "no windows of 'nobody' in [2026-12-01T00:00:00Z, ...) match\n"


# -- reopen and skip -------------------------------------------------------------------------------


def test_skip_then_reopen(run: Run, week: TaskStore) -> None:
    skipped = run("skip", "call_mom", "--start", "2026-12-03", "--end", "2026-12-06", "--reason", "away")
    assert skipped.code == 0
    assert skipped.out == "skipped 3 windows of 'call_mom' in [2026-12-03T00:00:00Z, 2026-12-06T00:00:00Z)\n"
    assert statuses(week, "call_mom") == [
        "COMPLETE",
        "SKIP",
        "SKIP",
        "SKIP",
        "SKIP",
        "AVAILABLE",
        "AVAILABLE",
    ]
    assert week.get("call_mom", D1 + 2 * DAY).message == "away"  # type: ignore[union-attr]

    reopened = run(
        "reopen", "call_mom", "--start", "2026-12-01", "--end", "2026-12-04", "--reason", "late bill"
    )
    assert reopened.code == 0
    assert (
        reopened.out == "reopened 3 windows of 'call_mom' in [2026-12-01T00:00:00Z, 2026-12-04T00:00:00Z)\n"
    )
    assert statuses(week, "call_mom") == ["AVAILABLE"] * 3 + ["SKIP", "SKIP", "AVAILABLE", "AVAILABLE"]
    for t in week.query("call_mom", bucket_end=D1 + 3 * DAY):
        assert t.message == "late bill" and t.attempt == 0 and t.reopened_at is not None
    nothing = run("reopen", "call_mom", "--start", "2026-12-06", "--end", "2026-12-08")
    assert nothing.code == 0 and nothing.out.startswith("reopened 0 windows")


def test_reopen_of_a_held_window_marks_it_for_a_rerun(run: Run, store: TaskStore) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + DAY)
    [claim] = store.claim("call_mom", worker="phone-1", lease_seconds=60)
    result = run("reopen", "call_mom", "--start", "2026-12-01", "--end", "2026-12-02", "--reason", "redo")
    assert result.out.startswith("reopened 1 windows")
    task = store.get("call_mom", D1)
    assert task is not None and task.status is Status.ACQUIRED and task.reopen_requested
    assert claim.complete().status is Status.AVAILABLE  # the holder's result is discarded


def test_a_ten_kilobyte_reason_is_stored_whole(run: Run, week: TaskStore) -> None:
    reason = "late data; " * 1000 + "'quoted' \"double\" ünïcödé 🚀"
    result = run("reopen", "call_mom", "--start", "2026-12-01", "--end", "2026-12-02", "--reason", reason)
    assert result.code == 0 and result.out.startswith("reopened 1 windows")
    assert week.get("call_mom", D1).message == reason  # type: ignore[union-attr]
    listed = json.loads(run("list", "call_mom", "--json", "--end", "2026-12-02").out)
    assert listed[0]["message"] == reason


# -- calendar --------------------------------------------------------------------------------------


def test_calendar_piped_is_plain(run: Run, week: TaskStore) -> None:
    result = run("calendar", "call_mom")
    assert result.code == 0 and result.err == ""
    assert "\x1b" not in result.out
    assert result.out.startswith(
        "call_mom  P1D @ 00:00Z\n"
        "2026-12-01 to 2026-12-08 (UTC), 7 windows: "
        "COMPLETE 1, SKIP 1, ACQUIRED 1, AVAILABLE 4 (1 after failing)\n"
        "\nDecember 2026\n"
    )
    [w49] = [line for line in result.out.splitlines() if line.startswith("W49")]
    assert re.split(r"\s{2,}", w49) == [
        "W49",
        "1 COMPLETE",
        "2 SKIP",
        "3 ACQUIRED",
        "4 AVAILABLE !1",
        "5 AVAILABLE",
        "6 AVAILABLE",
    ]
    assert "  2026-12-04T00:00:00Z  AVAILABLE  failed 1x  no answer" in result.out.splitlines()


def test_calendar_colour_follows_the_terminal_and_no_color(
    run: Run, week: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    coloured = run("calendar", "call_mom")
    assert "\x1b[32m 1 COMPLETE\x1b[0m" in coloured.out and "\x1b[31m 4 AVAILABLE !1\x1b[0m" in coloured.out
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b" not in run("calendar", "call_mom").out
    assert "\x1b[33m 3 ACQUIRED\x1b[0m" in run("calendar", "call_mom", "--color", "always").out
    monkeypatch.delenv("NO_COLOR")
    assert "\x1b" not in run("calendar", "call_mom", "--color", "never").out


def test_calendar_range_and_markdown(run: Run, week: TaskStore) -> None:
    result = run("calendar", "call_mom", "--start", "2026-12-04", "--end", "2026-12-06", "--markdown")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "**call\\_mom** · `P1D` @ 00:00Z"
    assert lines[2] == (
        "2026-12-04 to 2026-12-06 (UTC), 2 windows: "
        "COMPLETE 0, SKIP 0, ACQUIRED 0, AVAILABLE 2 (1 after failing)"
    )
    assert "| W49 |  | 1 | 2 | 3 | 4 ❌ AVAILABLE !1 | 5 ⬜ AVAILABLE | 6 |" in lines


def test_calendar_of_nothing(run: Run, store: TaskStore) -> None:
    result = run("calendar", "nobody")
    assert result.code == 0 and result.out == "" and result.err == "no windows of 'nobody'\n"


# -- stats -----------------------------------------------------------------------------------------


def test_stats(run: Run, week: TaskStore) -> None:
    week.create_windows("call_dad", "P1D", D1, D1 + 2 * DAY)
    result = run("stats")
    assert result.code == 0
    lines = [re.split(r"\s{2,}", line) for line in result.out.splitlines()]
    assert lines == [
        ["NAME", "COMPLETE", "SKIP", "ACQUIRED", "AVAILABLE", "MAX_FAILS", "OLDEST_AVAILABLE"],
        ["call_dad", "0", "0", "0", "2", "0", "2026-12-01T00:00:00Z"],
        ["call_mom", "1", "1", "1", "4", "1", "2026-12-04T00:00:00Z"],
    ]
    one = run("stats", "call_mom", "--json")
    assert json.loads(one.out) == [
        {
            "name": "call_mom",
            "available": 4,
            "acquired": 1,
            "complete": 1,
            "skip": 1,
            "oldest_available": "2026-12-04T00:00:00Z",
            "max_fail_count": 1,
        }
    ]
    missing = run("stats", "nobody")
    assert missing.code == 0 and missing.out == "" and missing.err == "no windows of 'nobody'\n"
    assert json.loads(run("stats", "nobody", "--json").out) == []


# -- hostile input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "x'; DROP TABLE dtc_tasks; --",
        'double "quoted" name',
        "semi;colon",
        "名前 🚀 ünïcödé",
        "back\\slash %s %(name)s {table}",
        "-starts-with-dash",
        "x" * 512,
    ],
)
def test_hostile_names_are_plain_data(run: Run, store: TaskStore, name: str) -> None:
    created = run("create", "--interval", "P1D", "--start", "2026-12-01", "--end", "2026-12-03", "--", name)
    assert created.code == 0, created.err
    listed = json.loads(run("list", "--json", "--", name).out)
    assert [r["name"] for r in listed] == [name, name]
    assert run("skip", "--start", "2026-12-01", "--end", "2026-12-02", "--", name).out.startswith("skipped 1")
    assert run("stats", "--json", "--", name).code == 0
    assert run("calendar", "--", name).code == 0
    assert [t.status for t in store.query(name)] == [Status.SKIP, Status.AVAILABLE]


def test_control_characters_in_stored_text_do_not_reach_the_terminal(run: Run, store: TaskStore) -> None:
    name = "evil\x1b[2J\nname"
    store.create_windows(name, "P1D", D1, D1 + DAY)
    [claim] = store.claim(name, worker="w\x1b]0;title\x07")
    claim.fail("boom\x1b[31m\r\nforged line")
    for args in (("list", name), ("calendar", name), ("stats",)):
        result = run(*args)
        assert result.code == 0
        assert "\x1b" not in result.out and "\r" not in result.out and "\x07" not in result.out
    assert "boom\\x1b[31m\\r\\nforged line" in run("list", name).out
    assert json.loads(run("list", "--json", name).out)[0]["message"] == "boom\x1b[31m\r\nforged line"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("list", "x" * 10_000), "name is 10000 characters long; the limit is 512"),
        (("reopen", "x" * 10_000, "--start", "2026-12-01", "--end", "2026-12-02"), "the limit is 512"),
        (("list", "a\x00b"), "contains a NUL character"),
        (("list", ""), "name must be a non-empty string"),
    ],
)
def test_bad_names_exit_2(run: Run, args: tuple[str, ...], expected: str) -> None:
    err = one_line_error(run(*args), 2)
    assert expected in err
    assert len(err) < 700  # a 10 kB argument does not come back as a 10 kB message


# -- exit codes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("init",),
        ("create", "x", "--interval", "P1D", "--start", "2026-12-01", "--end", "2026-12-02"),
        ("list", "x"),
        ("reopen", "x", "--start", "2026-12-01", "--end", "2026-12-02"),
        ("skip", "x", "--start", "2026-12-01", "--end", "2026-12-02"),
        ("calendar", "x"),
        ("stats",),
    ],
)
def test_unreachable_database_exits_1_without_the_password(run: Run, args: tuple[str, ...]) -> None:
    err = one_line_error(run(*args, url=UNREACHABLE), 1)
    assert "secret" not in err
    assert err.startswith("dagster-dtc: cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:1/x")


def test_database_url_from_the_environment(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DTC_DATABASE_URL", UNREACHABLE)
    err = one_line_error(run("stats", url=None), 1)
    assert "u:***@127.0.0.1:1/x" in err and "secret" not in err


def test_missing_table_exits_1_and_says_to_init(run: Run, table_name: str) -> None:
    err = one_line_error(run("list", "x"), 1)
    assert f"table {table_name} does not exist" in err and "dagster-dtc init" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "the following arguments are required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("create", "x", "--start", "2026-12-01", "--end", "2026-12-02"), "required: --interval"),
        (("create", "x", "--interval", "P1D", "--end", "2026-12-02"), "required: --start"),
        (("reopen", "x", "--start", "2026-12-01"), "required: --end"),
        (
            ("create", "x", "--interval", "P1Q", "--start", "2026-12-01", "--end", "2026-12-02"),
            "not an ISO-8601",
        ),
        (("create", "x", "--interval", "-P1D", "--start", "2026-12-01", "--end", "2026-12-02"), "--interval"),
        (
            (
                "create",
                "x",
                "--interval",
                "P1M",
                "--origin",
                "2026-01-31",
                "--start",
                "2026-12-01",
                "--end",
                "2027-01-01",
            ),
            "day 1-28",
        ),
        (("list", "x", "--status", "DONE"), "status 'DONE' is not one of"),
        (("list", "x", "--limit", "many"), "--limit must be a positive whole number, got 'many'"),
        (("list", "x", "--limit", "0"), "--limit must be a positive whole number, got '0'"),
        (("list", "x", "--status", ","), "no status given"),
        (("list", "x", "--start", "2026-12-01T00:00:00"), "has no time zone; add one"),
        (("list", "x", "--start", "yesterday"), "is not ISO-8601"),
        (("list", "x", "--start", "2026-02-30"), "is not a valid date"),
        (("calendar", "x", "--color", "sometimes"), "invalid choice: 'sometimes'"),
        (("stats", "--bogus"), "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(run: Run, args: tuple[str, ...], expected: str) -> None:
    err = one_line_error(run(*args, url=UNREACHABLE), 2)  # rejected before any connection is tried
    assert err.startswith("dagster-dtc")
    assert expected in err


@pytest.mark.parametrize("command", ["create", "list", "reopen", "skip", "calendar"])
def test_start_after_end_exits_2(run: Run, command: str) -> None:
    extra = ("--interval", "P1D") if command == "create" else ()
    err = one_line_error(
        run(command, "x", *extra, "--start", "2026-12-02", "--end", "2026-12-01", url=UNREACHABLE), 2
    )
    assert (
        f"dagster-dtc {command}: error: --end 2026-12-01T00:00:00Z must be after --start 2026-12-02T00:00:00Z"
        in err
    )


def test_empty_range_exits_2(run: Run) -> None:
    err = one_line_error(
        run("reopen", "x", "--start", "2026-12-01", "--end", "2026-12-01", url=UNREACHABLE), 2
    )
    assert "must be after" in err


@pytest.mark.parametrize(
    ("url", "table", "expected"),
    [
        ("mysql://u:secret@db/x", "dtc_tasks", "is not PostgreSQL"),
        ("postgresql://u:secret@127.0.0.1:1/x", "tasks; DROP TABLE x", "is not a plain identifier"),
        ("postgresql://u:secret@127.0.0.1:1/x", "a.b.c", "is not a plain identifier"),
    ],
)
def test_bad_url_or_table_exits_2(run: Run, url: str, table: str, expected: str) -> None:
    err = one_line_error(run("stats", url=url, table=table), 2)
    assert expected in err and "secret" not in err


def test_global_options_also_after_the_subcommand(
    run: Run, store: TaskStore, database_url: str, table_name: str
) -> None:
    store.create_windows("call_mom", "P1D", D1, D1 + DAY)
    result = run(
        "stats", "--json", "--table", table_name, "--database-url", database_url, url=None, table=None
    )
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["name"] == "call_mom"


def test_help_and_version_exit_0(run: Run) -> None:
    helped = run("--help", url=None, table=None)
    assert helped.code == 0
    for command in ("init", "create", "list", "reopen", "skip", "calendar", "stats"):
        assert command in helped.out
    assert run("create", "--help", url=None, table=None).out.count("--interval") >= 1
    version = run("--version", url=None, table=None)
    assert version.code == 0 and version.out.startswith("dagster-dtc ")


# -- the installed script --------------------------------------------------------------------------


def _script() -> str:
    path = Path(sys.executable).parent / "dagster-dtc"
    assert path.exists(), f"the dagster-dtc console script is not installed next to {sys.executable}"
    return str(path)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DTC_DATABASE_URL", "NO_COLOR")}
    return env


def test_installed_script_end_to_end(database_url: str, table_name: str) -> None:
    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_script(), "--database-url", database_url, "--table", table_name, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
        )

    assert script("init").returncode == 0
    created = script(
        "create", "call_mom", "--interval", "P1D", "--start", "2026-12-01", "--end", "2026-12-04"
    )
    assert created.returncode == 0 and created.stdout.startswith("created 3 new windows"), created.stderr
    skipped = script(
        "skip", "call_mom", "--start", "2026-12-02", "--end", "2026-12-03", "--reason", "holiday"
    )
    assert skipped.returncode == 0 and skipped.stdout.startswith("skipped 1 windows")
    listed = script("list", "call_mom", "--json")
    assert [r["status"] for r in json.loads(listed.stdout)] == ["AVAILABLE", "SKIP", "AVAILABLE"]
    calendar = script("calendar", "call_mom")
    assert calendar.returncode == 0 and "\x1b" not in calendar.stdout and " 2 SKIP " in calendar.stdout
    bad = script("list", "call_mom", "--start", "2026-12-01T00:00")
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1
    assert "has no time zone" in bad.stderr


def test_installed_script_unreachable_database() -> None:
    proc = subprocess.run(
        [_script(), "--database-url", UNREACHABLE, "stats"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "secret" not in proc.stderr and "127.0.0.1" in proc.stderr


def test_python_dash_m_runs_the_same_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dagster_dtc", "list", "x", "--start", "2026-12-01T00:00"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert proc.returncode == 2 and "has no time zone" in proc.stderr
