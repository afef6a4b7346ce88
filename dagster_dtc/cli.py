"""The ``dagster-dtc`` command: create, inspect, reopen and skip windows from a shell.

Exit status: 0 on success, 1 when the database cannot be reached or refuses a statement, 2 for a bad
argument (nothing was changed). Errors are one line on stderr, never a traceback.

.. code-block:: console

    $ dagster-dtc init
    $ dagster-dtc create call_mom --interval P1D --start 2026-12-01 --end 2027-01-01
    $ dagster-dtc calendar call_mom
    $ dagster-dtc reopen call_mom --start 2026-12-03 --end 2026-12-05 --reason "late data"
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import NoReturn, TextIO

import psycopg

from . import __version__
from .calendar import clean, render_markdown, render_text
from .database import DATABASE_URL_ENV
from .errors import (
    DatabaseUnavailableError,
    DTCError,
    InvalidInputError,
    InvalidIntervalError,
    InvalidTimeError,
)
from .intervals import UTC, Interval, parse_time
from .models import Status
from .schema import LATEST_VERSION
from .store import TaskStore, check_name

PROG = "dagster-dtc"
DEFAULT_TABLE = "dtc_tasks"
# `create` inserts long ranges in pieces of this many windows, so a terminal can show progress and
# no single statement runs for minutes.
CREATE_CHUNK = 50_000
# Error lines are clipped: a 10 kB argument must not become a 10 kB error message.
MAX_ERROR_CHARS = 600

Handler = Callable[[TaskStore, argparse.Namespace], int]


class UsageError(Exception):
    """A bad command line: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


# -- argument types ---------------------------------------------------------------------------------


def _time_arg(text: str) -> datetime:
    try:
        return parse_time(text)
    except InvalidTimeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _interval_arg(text: str) -> str:
    try:
        Interval.parse(text)
    except InvalidIntervalError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text  # parsed again with --origin, which it must be checked against


def _name_arg(text: str) -> str:
    try:
        return check_name(text)
    except InvalidInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _statuses_arg(text: str) -> list[str]:
    try:
        statuses = [Status.parse(part.strip()).value for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not statuses:
        raise argparse.ArgumentTypeError(f"no status given; use {', '.join(s.value for s in Status)}")
    return statuses


def _limit_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--limit must be a positive whole number, got {text!r}")
    return value


# -- output helpers ---------------------------------------------------------------------------------


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    """One line on stderr: line breaks (psycopg's hints) become spaces, control characters escapes."""
    sys.stderr.write(clean(" ".join(text.split()), MAX_ERROR_CHARS) + "\n")


def _iso(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns aligned with two spaces; the last column is not padded (it may be long)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=False)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return lines


def _check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise InvalidTimeError(f"--end {_iso(end)} must be after --start {_iso(start)}")


def _range_text(start: datetime | None, end: datetime | None) -> str:
    if start is None and end is None:
        return ""
    return f" in [{_iso(start) if start else '...'}, {_iso(end) if end else '...'})"


def _use_color(mode: str, stream: TextIO) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


# -- subcommands ------------------------------------------------------------------------------------


def cmd_init(store: TaskStore, args: argparse.Namespace) -> int:
    applied = store.init_schema()
    where = f"{store.table} at {store.safe_url}"
    if applied:
        _out(f"applied {len(applied)} migration(s) to {where}: {', '.join(applied)}")
    else:
        _out(f"{where} is already up to date (schema version {LATEST_VERSION})")
    return 0


def _chunks(grid: Interval, start: datetime, end: datetime, size: int) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive ranges of at most ``size`` windows each."""
    span = grid.bounds(start, end)
    if span is None:
        return
    low = span[0]
    while low < end:
        try:
            high = min(grid.shift(low, size), end)
        except (OverflowError, ValueError):  # the piece would end after the year 9999
            high = end
        yield low, high
        low = high


def cmd_create(store: TaskStore, args: argparse.Namespace) -> int:
    _check_range(args.start, args.end)
    grid = Interval.parse(args.interval, args.origin)
    total = grid.count(args.start, args.end)
    show_progress = total > CREATE_CHUNK and sys.stderr.isatty()
    created = done = 0
    for low, high in _chunks(grid, args.start, args.end, CREATE_CHUNK):
        created += store.create_windows(args.name, grid, low, high)
        done += grid.count(low, high)
        if show_progress:
            sys.stderr.write(f"\r{PROG} create: {done:,}/{total:,} windows ({100 * done // total}%)")
            sys.stderr.flush()
    if show_progress:
        sys.stderr.write("\n")
    _out(
        f"created {created} new windows of {clean(repr(args.name))} "
        f"({grid.iso}{_range_text(args.start, args.end)}); "
        f"{total - created} of the {total} in range already existed"
    )
    return 0


def cmd_list(store: TaskStore, args: argparse.Namespace) -> int:
    _check_range(args.start, args.end)
    tasks = store.query(args.name, args.status or None, args.start, args.end, limit=args.limit)
    if args.json:
        _out(json.dumps([t.as_dict() for t in tasks], indent=2, ensure_ascii=False))
        return 0
    if not tasks:
        _err(f"no windows of {args.name!r}{_range_text(args.start, args.end)} match")
        return 0
    rows = [
        (
            _iso(t.bucket_time),
            t.status.value,
            str(t.fail_count),
            clean(t.acquired_by or "-"),
            clean(t.message or ""),
        )
        for t in tasks
    ]
    for line in _table(("BUCKET", "STATUS", "FAILS", "ACQUIRED_BY", "MESSAGE"), rows):
        _out(line)
    return 0


def cmd_reopen(store: TaskStore, args: argparse.Namespace) -> int:
    _check_range(args.start, args.end)
    changed = store.reopen(args.name, args.start, args.end, args.reason)
    _out(f"reopened {changed} windows of {clean(repr(args.name))}{_range_text(args.start, args.end)}")
    return 0


def cmd_skip(store: TaskStore, args: argparse.Namespace) -> int:
    _check_range(args.start, args.end)
    changed = store.skip(args.name, args.start, args.end, args.reason)
    _out(f"skipped {changed} windows of {clean(repr(args.name))}{_range_text(args.start, args.end)}")
    return 0


def cmd_calendar(store: TaskStore, args: argparse.Namespace) -> int:
    _check_range(args.start, args.end)
    tasks = store.query(args.name, None, args.start, args.end)
    if not tasks:
        _err(f"no windows of {args.name!r}{_range_text(args.start, args.end)}")
        return 0
    if args.markdown:
        sys.stdout.write(render_markdown(tasks))
    else:
        sys.stdout.write(render_text(tasks, color=_use_color(args.color, sys.stdout)))
    return 0


def cmd_stats(store: TaskStore, args: argparse.Namespace) -> int:
    rows = store.stats(args.name)
    if args.json:
        out = [
            {**r, "oldest_available": _iso(r["oldest_available"]) if r["oldest_available"] else None}
            for r in rows
        ]
        _out(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        _err(f"no windows of {args.name!r}" if args.name else f"no windows in {store.table}")
        return 0
    header = ("NAME", "COMPLETE", "SKIP", "ACQUIRED", "AVAILABLE", "MAX_FAILS", "OLDEST_AVAILABLE")
    table = [
        (
            clean(r["name"]),
            str(r["complete"]),
            str(r["skip"]),
            str(r["acquired"]),
            str(r["available"]),
            str(r["max_fail_count"]),
            _iso(r["oldest_available"]),
        )
        for r in rows
    ]
    for line in _table(header, table):
        _out(line)
    return 0


# -- the parser -------------------------------------------------------------------------------------


def _add_range(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--start", type=_time_arg, required=required, metavar="T", help="first bucket time (inclusive)"
    )
    parser.add_argument("--end", type=_time_arg, required=required, metavar="T", help="end (exclusive)")


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the subcommand.
    common = _Parser(add_help=False)
    common.add_argument("--database-url", default=argparse.SUPPRESS, metavar="URL", help=argparse.SUPPRESS)
    common.add_argument("--table", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    parser = _Parser(
        prog=PROG,
        description="Create, inspect, reopen and skip the time windows of a DTC table.",
        epilog=(
            "Times are ISO-8601 with a zone (2026-12-01T06:00:00Z) or a bare date (UTC midnight). "
            "Ranges are [start, end). Exit status: 0 ok, 1 database unreachable or refused, 2 bad argument."
        ),
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help=f"postgresql://user:password@host:5432/db (default: ${DATABASE_URL_ENV}, else the embedded "
        "server in $DTC_HOME)",
    )
    parser.add_argument(
        "--table", default=DEFAULT_TABLE, help=f"table, optionally schema.table (default: {DEFAULT_TABLE})"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    command("init", cmd_init, "Create the table or upgrade it to the latest schema.")

    p = command("create", cmd_create, "Create the windows of NAME whose bucket starts in [--start, --end).")
    p.add_argument("name", type=_name_arg, metavar="NAME")
    p.add_argument(
        "--interval", type=_interval_arg, required=True, help="ISO-8601 duration: PT5M, PT1H, P1D, P1M"
    )
    _add_range(p, required=True)
    p.add_argument("--origin", type=_time_arg, metavar="T", help="grid origin (default 1970-01-01T00:00Z)")

    p = command("list", cmd_list, "One line per window of NAME, oldest first.")
    p.add_argument("name", type=_name_arg, metavar="NAME")
    p.add_argument(
        "--status",
        type=_statuses_arg,
        action="extend",
        metavar="S",
        help="only these statuses (repeatable, or comma-separated): AVAILABLE, ACQUIRED, COMPLETE, SKIP",
    )
    _add_range(p, required=False)
    p.add_argument("--limit", type=_limit_arg, metavar="N", help="at most this many windows")
    p.add_argument("--json", action="store_true", help="print a JSON array of window records")

    for name, handler, verb in (("reopen", cmd_reopen, "Reopen"), ("skip", cmd_skip, "Skip")):
        text = (
            "Make the COMPLETE/SKIP (and exhausted) windows of NAME in [--start, --end) AVAILABLE again; "
            "a window held right now runs again after its holder finishes."
            if name == "reopen"
            else "Mark the AVAILABLE and ACQUIRED windows of NAME in [--start, --end) SKIP."
        )
        p = command(name, handler, text)
        p.add_argument("name", type=_name_arg, metavar="NAME")
        _add_range(p, required=True)
        p.add_argument("--reason", help=f"{verb} reason, stored in the windows' message")

    p = command(
        "calendar", cmd_calendar, "The windows of NAME as a calendar: buckets across, statuses under."
    )
    p.add_argument("name", type=_name_arg, metavar="NAME")
    _add_range(p, required=False)
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="ANSI colours (auto: when stdout is a terminal and NO_COLOR is unset)",
    )
    p.add_argument("--markdown", action="store_true", help="print Markdown tables instead")

    p = command(
        "stats", cmd_stats, "Per name: windows in each status, oldest AVAILABLE window, most failures."
    )
    p.add_argument("name", nargs="?", type=_name_arg, metavar="NAME")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    return parser


# -- entry point ------------------------------------------------------------------------------------


def _database_error(store: TaskStore, exc: psycopg.Error) -> str:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return (
            f"{PROG}: table {store.table} does not exist at {store.safe_url}; create it with "
            f"`{PROG} init` (or pass --table)"
        )
    if isinstance(exc, psycopg.errors.UndefinedColumn | psycopg.errors.UndefinedFunction):
        return f"{PROG}: table {store.table} has an old schema ({first_line}); upgrade it with `{PROG} init`"
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return f"{PROG}: permission denied at {store.safe_url}: {first_line}"
    return f"{PROG}: database error at {store.safe_url}: {first_line}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        _err(str(exc))
        return 2
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    with warnings.catch_warnings():
        if not sys.warnoptions:
            # Library chatter is not for a command's user, e.g. platformdirs' "XDG_RUNTIME_DIR is not
            # set" when the embedded server starts in a container.
            warnings.filterwarnings("ignore", module="platformdirs")
        return _execute(args)


def _execute(args: argparse.Namespace) -> int:
    """Run the parsed command; every expected failure becomes one line on stderr and a status."""
    try:
        store = TaskStore(args.database_url, args.table)
    except InvalidInputError as exc:
        _err(f"{PROG}: error: {exc}")
        return 2
    try:
        status = int(args.handler(store, args))
        sys.stdout.flush()  # a closed pipe shows up here, not as a warning at exit
        return status
    except InvalidInputError as exc:
        _err(f"{PROG} {args.command}: error: {exc}")
        return 2
    except OverflowError as exc:  # date arithmetic beyond the year 9999
        _err(f"{PROG} {args.command}: error: time out of range ({exc})")
        return 2
    except DatabaseUnavailableError as exc:
        _err(f"{PROG}: {exc}")
        return 1
    except psycopg.Error as exc:
        _err(_database_error(store, exc))
        return 1
    except DTCError as exc:
        _err(f"{PROG} {args.command}: {exc}")
        return 1
    except KeyboardInterrupt:
        _err(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`dagster-dtc list x | head`); stop quietly.
        _silence_stdout()
        return 141
    finally:
        store.close()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":
    sys.exit(main())
