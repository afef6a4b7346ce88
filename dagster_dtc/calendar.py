"""Calendars of windows: buckets across, statuses under them, as terminal text or Markdown.

Pure functions over :class:`~dagster_dtc.Task` records (nothing here touches the database). The
layout follows the interval:

* ``P1D``: a month calendar per month, one row per week (Mon..Sun) from the first window's week to
  the last one's, each cell the day of the month and the window's status (just the day when it
  has no window).
* ``PT1H`` .. ``PT12H`` (a whole number of windows per day, at most 24): one row per day, the time
  of day across.
* ``PT5M`` .. ``PT30M`` (at most 12 windows per hour): one block per day, one row per hour, the
  minute across.
* ``P1M``, ``P3M``, ``P6M`` ... (months dividing a year): one row per year, the months across.
* anything else: a list, one window per line.

Cells show the status word (``27 AVAILABLE !2``: the window of the 27th, failed twice); grids of
more than 8 columns (hourly, five-minutely, monthly) use one-letter codes instead: ``C`` COMPLETE,
``S`` SKIP, ``A`` ACQUIRED, ``.`` AVAILABLE. In colour: COMPLETE green, SKIP grey, ACQUIRED yellow,
AVAILABLE after a failure red.

    call_mom  P1D @ 00:00Z
    2026-11-23 to 2026-11-29 (UTC), 6 windows: COMPLETE 2, SKIP 2, ACQUIRED 1, AVAILABLE 1

    November 2026
         Mon           Tue           Wed           Thu           Fri           Sat           Sun
    W48  23 COMPLETE   24 COMPLETE   25 SKIP       26 ACQUIRED   27 AVAILABLE  28 SKIP       29

.. code-block:: python

    from dagster_dtc import TaskStore
    from dagster_dtc.calendar import render_markdown, render_text

    tasks = TaskStore().query("call_mom")
    print(render_text(tasks, color=True))
    markdown = render_markdown(tasks)   # e.g. for Dagster metadata (MetadataValue.md)
"""

from __future__ import annotations

import calendar as _stdcal
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import groupby

from .errors import InvalidIntervalError
from .intervals import Interval
from .models import Status, Task

UTC = timezone.utc
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = tuple(_stdcal.month_abbr[m] for m in range(1, 13))
# How many windows with failures the "failures" part lists, worst first.
MAX_FAILURES_LISTED = 10
MAX_MESSAGE_CHARS = 160

CODES = {Status.COMPLETE: "C", Status.SKIP: "S", Status.ACQUIRED: "A", Status.AVAILABLE: "."}
EMOJI = {Status.COMPLETE: "✅", Status.SKIP: "⏭️", Status.ACQUIRED: "⏳", Status.AVAILABLE: "⬜"}
FAILED_EMOJI = "❌"
# Grids wider than this show one-letter codes (explained in a legend) instead of status words.
MAX_WORD_COLUMNS = 8
TEXT_LEGEND = "C COMPLETE  S SKIP  A ACQUIRED (running)  . AVAILABLE"
MARKDOWN_LEGEND = "✅ COMPLETE · ⏭️ SKIP · ⏳ ACQUIRED (running) · ⬜ AVAILABLE · ❌ AVAILABLE after a failure"
FAILS_LEGEND = "!n: failed n times"

_RESET = "\x1b[0m"
_COLOURS = {
    Status.COMPLETE: "\x1b[32m",  # green
    Status.SKIP: "\x1b[90m",  # grey
    Status.ACQUIRED: "\x1b[33m",  # yellow
}
_RED = "\x1b[31m"


# -- the grid -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One place in the grid: an optional label (the day of the month) and the window there, if any."""

    label: str = ""
    task: Task | None = None


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Section:
    """One block of the calendar (a month, a day ...) with its column headings."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Calendar:
    """The windows of one name laid out as a grid."""

    name: str
    interval: str
    layout: str  # "month", "day", "hour", "year" or "list"
    sections: tuple[Section, ...]
    tasks: tuple[Task, ...]

    @property
    def counts(self) -> dict[Status, int]:
        found = Counter(t.status for t in self.tasks)
        return {s: found.get(s, 0) for s in Status}

    @property
    def failed(self) -> list[Task]:
        """Windows that failed at least once, most failures first."""
        return sorted(
            (t for t in self.tasks if t.fail_count > 0), key=lambda t: (-t.fail_count, t.bucket_time)
        )

    @property
    def start(self) -> datetime:
        return self.tasks[0].bucket_time

    @property
    def end(self) -> datetime:
        return max(_end(t) for t in self.tasks)


def build(tasks: Iterable[Task]) -> list[Calendar]:
    """One :class:`Calendar` per name found in ``tasks``, ordered by name."""
    ordered = sorted(tasks, key=lambda t: (t.name, _utc(t.bucket_time)))
    return [_build_one(name, list(group)) for name, group in groupby(ordered, key=lambda t: t.name)]


def _build_one(name: str, tasks: list[Task]) -> Calendar:
    iso = tasks[0].bucket_interval
    layout = _choose_layout(iso)
    builders = {
        "month": _month_sections,
        "day": _day_sections,
        "hour": _hour_sections,
        "year": _year_sections,
    }
    try:
        sections = builders[layout](tasks) if layout in builders else None
    except (OverflowError, ValueError):  # a grid that would reach past 9999-12-31
        sections = None
    if sections is None:  # two windows in one place (windows made with different origins)
        layout, sections = "list", _list_sections(tasks)
    return Calendar(name, iso, layout, tuple(sections), tuple(tasks))


def _choose_layout(iso: str) -> str:
    try:
        grid = Interval.parse(iso)
    except InvalidIntervalError:
        return "list"
    if grid.months:
        return "year" if 12 % grid.months == 0 else "list"
    if grid.fixed == DAY:
        return "month"
    if grid.fixed < DAY and DAY % grid.fixed == timedelta(0) and DAY // grid.fixed <= 24:
        return "day"
    if grid.fixed < HOUR and HOUR % grid.fixed == timedelta(0) and HOUR // grid.fixed <= 12:
        return "hour"
    return "list"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _end(task: Task) -> datetime:
    try:
        return _utc(task.window_end)
    except (InvalidIntervalError, OverflowError, ValueError):  # e.g. the window ends after 9999
        return _utc(task.bucket_time)


def _midnight(value: datetime) -> datetime:
    return value.replace(hour=0, minute=0, second=0, microsecond=0)


def _hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def _unique(keys: Sequence[object]) -> bool:
    return len(set(keys)) == len(keys)


def _month_title(year: int, month: int) -> str:
    return f"{_stdcal.month_name[month]} {year}"


def _month_sections(tasks: list[Task]) -> list[Section] | None:
    days = [_utc(t.bucket_time).date() for t in tasks]
    if not _unique(days):
        return None
    by_day = dict(zip(days, tasks, strict=True))
    first, last = min(days), max(days)
    sections = []
    for year, month in sorted({(d.year, d.month) for d in days}):
        rows = []
        for week in _stdcal.Calendar(firstweekday=0).monthdatescalendar(year, month):
            if week[-1] < first or week[0] > last:  # weeks outside the windows' range
                continue
            cells = tuple(Cell(f"{d.day:>2}", by_day.get(d)) if d.month == month else Cell() for d in week)
            rows.append(Row(f"W{week[0].isocalendar()[1]:02d}", cells))
        sections.append(Section(_month_title(year, month), WEEKDAYS, tuple(rows)))
    return sections


def _clock(offset: timedelta, within_hour: bool) -> str:
    """Column heading for a window starting ``offset`` after midnight (or after the hour)."""
    h, rest = divmod(int(offset.total_seconds()), 3600)
    m, s = divmod(rest, 60)
    if within_hour:
        return f":{m:02d}" if s == 0 else f":{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}" if s == 0 else f"{h:02d}:{m:02d}:{s:02d}"


def _slots(tasks: list[Task], floor: Callable[[datetime], datetime], span: timedelta) -> list[timedelta]:
    """The offsets within each ``span`` where windows start: the grid's, plus any found off it."""
    every = Interval.parse(tasks[0].bucket_interval).fixed
    first = _utc(tasks[0].bucket_time)
    phase = (first - floor(first)) % every
    expected = {phase + k * every for k in range(span // every)}
    found = {_utc(t.bucket_time) - floor(_utc(t.bucket_time)) for t in tasks}
    return sorted(expected | found)


def _day_sections(tasks: list[Task]) -> list[Section] | None:
    keys = [
        (_midnight(_utc(t.bucket_time)), _utc(t.bucket_time) - _midnight(_utc(t.bucket_time))) for t in tasks
    ]
    if not _unique(keys):
        return None
    slots = _slots(tasks, _midnight, DAY)
    whole_hours = all(s % HOUR == timedelta(0) for s in slots)
    columns = tuple(f"{s // HOUR:02d}" if whole_hours else _clock(s, within_hour=False) for s in slots)
    by_key = dict(zip(keys, tasks, strict=True))
    days = sorted({k[0] for k in keys})
    sections = []
    for (year, month), group in groupby(days, key=lambda d: (d.year, d.month)):
        rows = tuple(
            Row(
                f"{d.date().isoformat()} {WEEKDAYS[d.weekday()]}",
                tuple(Cell("", by_key.get((d, s))) for s in slots),
            )
            for d in group
        )
        sections.append(Section(_month_title(year, month), columns, rows))
    return sections


def _hour_sections(tasks: list[Task]) -> list[Section] | None:
    keys = [(_hour(_utc(t.bucket_time)), _utc(t.bucket_time) - _hour(_utc(t.bucket_time))) for t in tasks]
    if not _unique(keys):
        return None
    slots = _slots(tasks, _hour, HOUR)
    columns = tuple(_clock(s, within_hour=True) for s in slots)
    by_key = dict(zip(keys, tasks, strict=True))
    hours = sorted({k[0] for k in keys})
    sections = []
    for day, group in groupby(hours, key=lambda h: h.date()):
        rows = tuple(
            Row(f"{h.hour:02d}:00", tuple(Cell("", by_key.get((h, s))) for s in slots)) for h in group
        )
        sections.append(Section(f"{day.isoformat()} {WEEKDAYS[day.weekday()]}", columns, rows))
    return sections


def _year_sections(tasks: list[Task]) -> list[Section] | None:
    keys = [(_utc(t.bucket_time).year, _utc(t.bucket_time).month) for t in tasks]
    if not _unique(keys):
        return None
    every = Interval.parse(tasks[0].bucket_interval).months
    phase = (keys[0][1] - 1) % every
    months = sorted({phase + 1 + k * every for k in range(12 // every)} | {m for _, m in keys})
    by_key = dict(zip(keys, tasks, strict=True))
    rows = tuple(
        Row(str(year), tuple(Cell("", by_key.get((year, m))) for m in months))
        for year in sorted({y for y, _ in keys})
    )
    return [Section("", tuple(MONTHS[m - 1] for m in months), rows)]


def _list_sections(tasks: list[Task]) -> list[Section]:
    rows = tuple(Row(_iso(t.bucket_time), (Cell("", t),)) for t in tasks)
    return [Section("", ("status",), rows)]


# -- shared formatting -----------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def _when(value: datetime) -> str:
    """A date when the instant is midnight UTC, else the full instant."""
    v = _utc(value)
    return v.date().isoformat() if v == _midnight(v) else _iso(v)


def clean(text: str, limit: int | None = None) -> str:
    """``text`` with control and other invisible characters escaped (``\\x1b``, ``\\n``), so a
    name or message written by another system cannot move the cursor or recolour the terminal."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
    if limit is not None and len(out) > limit:
        out = out[: limit - 1] + "…"
    return out


def _status_text(task: Task, compact: bool) -> str:
    """``COMPLETE``, ``AVAILABLE !2`` (failed twice); ``C``, ``.!2`` in a compact grid."""
    fails = f"!{task.fail_count}" if task.fail_count else ""
    if compact:
        return CODES[task.status] + fails
    return f"{task.status.value} {fails}" if fails else task.status.value


def _compact(section: Section) -> bool:
    return len(section.columns) > MAX_WORD_COLUMNS


def _colour(task: Task) -> str:
    if task.status is Status.AVAILABLE:
        return _RED if task.fail_count > 0 else ""
    return _COLOURS[task.status]


SUMMARY_ORDER = (Status.COMPLETE, Status.SKIP, Status.ACQUIRED, Status.AVAILABLE)


def _anchor(cal: Calendar) -> str:
    """Where the grid sits: ``00:00Z`` for daily windows, ``day 1 00:00Z`` for monthly ones ..."""
    first = _utc(cal.start)
    try:
        grid = Interval.parse(cal.interval)
    except InvalidIntervalError:
        return _iso(first)
    if grid.months:
        return f"day {first.day} {_clock_of(first)}"
    if grid.fixed < DAY:  # the earliest time of day on the grid
        return _clock_of(_midnight(first) + (first - _midnight(first)) % grid.fixed)
    if grid.fixed == DAY:
        return _clock_of(first)
    return f"{WEEKDAYS[first.weekday()]} {_clock_of(first)}"


def _clock_of(value: datetime) -> str:
    return value.strftime("%H:%M:%SZ" if value.second else "%H:%MZ")


def _summary(cal: Calendar) -> str:
    counts = cal.counts
    failing = sum(1 for t in cal.tasks if t.status is Status.AVAILABLE and t.fail_count > 0)
    return (
        f"{_when(cal.start)} to {_when(cal.end)} (UTC), {len(cal.tasks)} windows: "
        + ", ".join(f"{s.value} {counts[s]}" for s in SUMMARY_ORDER)
        + (f" ({failing} after failing)" if failing else "")
    )


def _legend(cal: Calendar, codes: str) -> list[str]:
    parts = [codes] if any(_compact(s) for s in cal.sections) else []
    if any(t.fail_count for t in cal.tasks):
        parts.append(FAILS_LEGEND)
    return ["", "  ".join(parts)] if parts else []


# -- terminal text ---------------------------------------------------------------------------------


def render_text(tasks: Iterable[Task], *, color: bool = False) -> str:
    """The calendar of ``tasks`` for a terminal; ANSI colours when ``color`` is True."""
    calendars = build(tasks)
    if not calendars:
        return "no windows\n"
    return "\n".join(_text_calendar(cal, color) for cal in calendars)


def _text_calendar(cal: Calendar, color: bool) -> str:
    lines = [f"{clean(cal.name)}  {cal.interval} @ {_anchor(cal)}", _summary(cal)]
    for section in cal.sections:
        lines.append("")
        lines.extend(_text_section(section, color, list_layout=cal.layout == "list"))
    lines.extend(_legend(cal, TEXT_LEGEND))
    failed = cal.failed
    if failed:
        lines.append("")
        lines.append("failures (most first):")
        for t in failed[:MAX_FAILURES_LISTED]:
            message = clean(t.message or "", MAX_MESSAGE_CHARS)
            lines.append(
                f"  {_iso(t.bucket_time)}  {t.status.value:<9}  failed {t.fail_count}x  {message}".rstrip()
            )
        if len(failed) > MAX_FAILURES_LISTED:
            lines.append(f"  ... and {len(failed) - MAX_FAILURES_LISTED} more")
    return "\n".join(lines) + "\n"


def _text_cell(cell: Cell, compact: bool) -> str:
    if cell.task is None:
        return cell.label
    status = _status_text(cell.task, compact)
    return f"{cell.label} {status}" if cell.label else status


def _text_section(section: Section, color: bool, list_layout: bool = False) -> list[str]:
    compact = _compact(section)
    texts = [[_text_cell(c, compact) for c in row.cells] for row in section.rows]
    label_width = max((len(r.label) for r in section.rows), default=0)
    # One width for every column, so the grid reads like a calendar however long a cell gets.
    width = max([len(c) for c in section.columns] + [len(t) for row in texts for t in row])
    out = []
    if section.title:
        out.append(section.title)
    if not list_layout:
        out.append((" " * label_width + "  " + "  ".join(c.ljust(width) for c in section.columns)).rstrip())
    for row, cell_texts in zip(section.rows, texts, strict=True):
        parts = []
        for cell, text in zip(row.cells, cell_texts, strict=True):
            padded = text.ljust(width)
            if color and cell.task is not None and _colour(cell.task):
                padded = _colour(cell.task) + text + _RESET + " " * (width - len(text))
            parts.append(padded)
        out.append((row.label.ljust(label_width) + "  " + "  ".join(parts)).rstrip())
    return out


# -- Markdown --------------------------------------------------------------------------------------

_MD_SPECIAL = set("\\`*_[]<>|#~!&{}")


def md_escape(text: str, limit: int | None = None) -> str:
    """``text`` safe inside a Markdown table cell: no markup, no HTML, no line breaks."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in clean(text, limit))


def render_markdown(tasks: Iterable[Task]) -> str:
    """The calendar of ``tasks`` as Markdown tables (for Dagster metadata or a report)."""
    calendars = build(tasks)
    if not calendars:
        return "_no windows_\n"
    return "\n".join(_md_calendar(cal) for cal in calendars)


def _md_cell(cell: Cell, compact: bool) -> str:
    if cell.task is None:
        return cell.label.strip()
    t = cell.task
    emoji = FAILED_EMOJI if t.status is Status.AVAILABLE and t.fail_count else EMOJI[t.status]
    fails = f" !{t.fail_count}" if t.fail_count else ""
    status = f"{emoji}{fails}" if compact else f"{emoji} {t.status.value}{fails}"
    return f"{cell.label.strip()} {status}".strip()


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out.extend("| " + " | ".join(r) + " |" for r in rows)
    return out


def _md_calendar(cal: Calendar) -> str:
    lines = [f"**{md_escape(cal.name)}** · `{cal.interval}` @ {_anchor(cal)}", "", _summary(cal)]
    corner = {"month": "Week", "day": "Day", "hour": "Hour", "year": "Year", "list": "Window"}[cal.layout]
    for section in cal.sections:
        lines.append("")
        if section.title:
            lines.extend([f"**{md_escape(section.title)}**", ""])
        compact = _compact(section)
        header = [corner, *section.columns]
        rows = ([row.label, *(_md_cell(c, compact) for c in row.cells)] for row in section.rows)
        lines.extend(_md_table(header, rows))
    lines.extend(_legend(cal, MARKDOWN_LEGEND))
    failed = cal.failed
    if failed:
        lines.extend(["", "**Failures**", ""])
        rows_ = [
            [
                _iso(t.bucket_time),
                t.status.value,
                str(t.fail_count),
                md_escape(t.message or "", MAX_MESSAGE_CHARS),
            ]
            for t in failed[:MAX_FAILURES_LISTED]
        ]
        lines.extend(_md_table(["Window", "Status", "Fails", "Message"], rows_))
        if len(failed) > MAX_FAILURES_LISTED:
            lines.extend(["", f"… and {len(failed) - MAX_FAILURES_LISTED} more"])
    return "\n".join(lines) + "\n"


__all__ = [
    "Calendar",
    "Cell",
    "Row",
    "Section",
    "build",
    "clean",
    "md_escape",
    "render_markdown",
    "render_text",
]
