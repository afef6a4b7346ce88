"""The calendar renderer: pure functions over Task records, no database."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from dagster_dtc.calendar import WEEKDAYS, build, md_escape, render_markdown, render_text
from dagster_dtc.models import Status, Task

UTC = timezone.utc
DAY = timedelta(days=1)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
GREEN, GREY, YELLOW, RED, RESET = "\x1b[32m", "\x1b[90m", "\x1b[33m", "\x1b[31m", "\x1b[0m"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def task(
    bucket: datetime,
    interval: str = "P1D",
    status: str = "AVAILABLE",
    fails: int = 0,
    message: str | None = None,
    name: str = "call_mom",
) -> Task:
    return Task(
        name=name,
        bucket_time=bucket,
        bucket_interval=interval,
        status=Status(status),
        created_by="test",
        created_at=None,
        acquired_by="w1" if status == "ACQUIRED" else None,
        acquired_at=None,
        completed_at=None,
        fail_count=fails,
        message=message,
        generation=0,
        attempt=0,
        max_attempts=None,
        not_before=None,
        lease_expires_at=None,
        reopen_requested=False,
        reopened_at=None,
    )


def december() -> list[Task]:
    """2026-12-01 (a Tuesday) .. 2026-12-07: C C S A . .!2 C."""
    statuses = ["COMPLETE", "COMPLETE", "SKIP", "ACQUIRED", "AVAILABLE", "AVAILABLE", "COMPLETE"]
    return [
        task(
            utc(2026, 12, 1) + i * DAY,
            status=s,
            fails=2 if i == 5 else 0,
            message="no answer" if i == 5 else None,
        )
        for i, s in enumerate(statuses)
    ]


def line_starting(text: str, prefix: str, first: bool = False) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(prefix)]
    if first:
        return lines[0]
    [line] = lines
    return line


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# -- daily: a month calendar ----------------------------------------------------------------------


def test_the_seed_week() -> None:
    """The README's picture: call_mom, Monday 2026-11-23 .. Saturday, no window on Sunday."""
    monday = utc(2026, 11, 23)
    statuses = ["COMPLETE", "COMPLETE", "SKIP", "ACQUIRED", "AVAILABLE", "SKIP"]
    text = render_text([task(monday + i * DAY, status=s) for i, s in enumerate(statuses)])
    assert text == (
        "call_mom  P1D @ 00:00Z\n"
        "2026-11-23 to 2026-11-29 (UTC), 6 windows: COMPLETE 2, SKIP 2, ACQUIRED 1, AVAILABLE 1\n"
        "\n"
        "November 2026\n"
        "     Mon           Tue           Wed           Thu           Fri           Sat           Sun\n"
        "W48  23 COMPLETE   24 COMPLETE   25 SKIP       26 ACQUIRED   27 AVAILABLE  28 SKIP       29\n"
    )


def test_daily_windows_fold_into_weeks_monday_first() -> None:
    [cal] = build(december())
    assert cal.layout == "month"
    [section] = cal.sections
    assert section.title == "December 2026"
    assert section.columns == WEEKDAYS
    first, second = section.rows[0], section.rows[1]
    assert first.label == "W49" and second.label == "W50"
    # Monday 30 November belongs to another month: an empty cell
    assert first.cells[0].task is None and first.cells[0].label == ""
    assert first.cells[1].label.strip() == "1" and first.cells[1].task is not None
    assert first.cells[1].task.bucket_time == utc(2026, 12, 1)
    # 7 December is the Monday of the second week
    assert second.cells[0].task is not None and second.cells[0].task.bucket_time == utc(2026, 12, 7)
    # the whole month is drawn: days without a window show only their number
    assert second.cells[1].label.strip() == "8" and second.cells[1].task is None
    assert len(section.rows) == 2  # only the weeks of the windows' range


def test_daily_text_shows_day_numbers_statuses_and_fail_counts() -> None:
    text = render_text(december())
    assert "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "call_mom  P1D @ 00:00Z"
    assert lines[1] == (
        "2026-12-01 to 2026-12-08 (UTC), 7 windows: "
        "COMPLETE 3, SKIP 1, ACQUIRED 1, AVAILABLE 2 (1 after failing)"
    )
    header = line_starting(text, "     Mon")
    assert cells(header) == list(WEEKDAYS)
    assert cells(line_starting(text, "W49")) == [
        "W49",
        "1 COMPLETE",
        "2 COMPLETE",
        "3 SKIP",
        "4 ACQUIRED",
        "5 AVAILABLE",
        "6 AVAILABLE !2",
    ]
    assert cells(line_starting(text, "W50")) == ["W50", "7 COMPLETE", "8", "9", "10", "11", "12", "13"]
    # columns line up: every "Tue" cell starts where the heading does
    tue = header.index("Tue")
    assert line_starting(text, "W49")[tue : tue + 3] == " 1 "
    assert line_starting(text, "W50")[tue : tue + 3] == " 8 "
    assert "!n: failed n times" in lines and "C COMPLETE" not in text  # no codes to explain
    assert "  2026-12-06T00:00:00Z  AVAILABLE  failed 2x  no answer" in text


def test_colours_by_status() -> None:
    text = render_text(december(), color=True)
    assert f"{GREEN} 1 COMPLETE{RESET}" in text
    assert f"{GREY} 3 SKIP{RESET}" in text
    assert f"{YELLOW} 4 ACQUIRED{RESET}" in text
    assert f"{RED} 6 AVAILABLE !2{RESET}" in text
    # AVAILABLE without failures keeps the terminal's default colour
    assert re.search(r"(?<!m) 5 AVAILABLE", text)
    assert "\x1b[" not in line_starting(ANSI.sub("", text), "W49")
    # colour changes nothing but the escapes: stripped, it is the plain calendar
    assert ANSI.sub("", text) == render_text(december())


def test_no_colour_by_default() -> None:
    assert "\x1b" not in render_text(december())


def test_months_of_a_long_range_each_get_a_section() -> None:
    tasks = [task(utc(2026, 11, 28) + i * DAY, status="COMPLETE") for i in range(40)]
    [cal] = build(tasks)
    assert [s.title for s in cal.sections] == ["November 2026", "December 2026", "January 2027"]
    assert sum(c.task is not None for s in cal.sections for r in s.rows for c in r.cells) == 40


def test_daily_windows_off_midnight_still_fold_by_date() -> None:
    tasks = [task(utc(2026, 12, 1, 6) + i * DAY, status="COMPLETE") for i in range(3)]
    [cal] = build(tasks)
    assert cal.layout == "month"
    text = render_text(tasks)
    assert text.startswith("call_mom  P1D @ 06:00Z\n")
    assert cells(line_starting(text, "W49"))[1:4] == ["1 COMPLETE", "2 COMPLETE", "3 COMPLETE"]


def test_two_windows_on_one_day_fall_back_to_a_list() -> None:
    tasks = [task(utc(2026, 12, 1)), task(utc(2026, 12, 1, 6), status="COMPLETE")]
    [cal] = build(tasks)
    assert cal.layout == "list"
    text = render_text(tasks)
    assert "2026-12-01T00:00:00Z  AVAILABLE" in text and "2026-12-01T06:00:00Z  COMPLETE" in text


# -- other intervals -------------------------------------------------------------------------------


def test_hourly_windows_have_hours_across_and_days_down() -> None:
    tasks = [
        task(utc(2026, 12, 1, 22) + timedelta(hours=i), "PT1H", "COMPLETE" if i < 3 else "AVAILABLE")
        for i in range(5)
    ]
    [cal] = build(tasks)
    assert cal.layout == "day"
    [section] = cal.sections
    assert section.columns == tuple(f"{h:02d}" for h in range(24))
    assert [r.label for r in section.rows] == ["2026-12-01 Tue", "2026-12-02 Wed"]
    text = render_text(tasks)
    assert cells(line_starting(text, "2026-12-01 Tue")) == ["2026-12-01 Tue", "C", "C"]
    row = line_starting(text, "2026-12-02 Wed")
    header = line_starting(text, " " * 14)
    assert (
        row[header.index("00")] == "C" and row[header.index("01")] == "." and row[header.index("02")] == "."
    )


def test_six_hourly_windows_get_four_columns() -> None:
    tasks = [task(utc(2026, 12, 1) + timedelta(hours=6 * i), "PT6H", "COMPLETE") for i in range(8)]
    [cal] = build(tasks)
    assert cal.sections[0].columns == ("00", "06", "12", "18")
    # few columns: status words, as in the seed calendar
    assert cells(line_starting(render_text(tasks), "2026-12-01 Tue")) == ["2026-12-01 Tue"] + ["COMPLETE"] * 4


def test_wide_grids_use_codes_and_explain_them() -> None:
    eight = [task(utc(2026, 12, 1) + timedelta(hours=3 * i), "PT3H", "SKIP") for i in range(8)]
    assert cells(line_starting(render_text(eight), "2026-12-01 Tue")) == ["2026-12-01 Tue"] + ["SKIP"] * 8
    twelve = [task(utc(2026, 12, 1) + timedelta(hours=2 * i), "PT2H", "SKIP") for i in range(12)]
    text = render_text(twelve)
    assert cells(line_starting(text, "2026-12-01 Tue")) == ["2026-12-01 Tue"] + ["S"] * 12
    assert "C COMPLETE  S SKIP  A ACQUIRED (running)  . AVAILABLE" in text.splitlines()


def test_half_hour_grid_off_the_hour_labels_minutes() -> None:
    tasks = [task(utc(2026, 12, 1, 0, 30) + timedelta(hours=3 * i), "PT3H", "COMPLETE") for i in range(3)]
    [cal] = build(tasks)
    assert cal.sections[0].columns[:3] == ("00:30", "03:30", "06:30")


def test_five_minute_windows_are_grouped_by_day_and_hour() -> None:
    tasks = [task(utc(2026, 12, 1, 23, 50) + timedelta(minutes=5 * i), "PT5M", "SKIP") for i in range(4)]
    [cal] = build(tasks)
    assert cal.layout == "hour"
    assert [s.title for s in cal.sections] == ["2026-12-01 Tue", "2026-12-02 Wed"]
    assert cal.sections[0].columns == tuple(f":{m:02d}" for m in range(0, 60, 5))
    assert [r.label for r in cal.sections[0].rows] == ["23:00"]
    text = render_text(tasks)
    header = line_starting(text, "       :00", first=True)
    first = line_starting(text, "23:00")
    assert first[header.index(":50")] == "S" and first[header.index(":55")] == "S"
    assert cells(line_starting(text, "00:00")) == ["00:00", "S", "S"]


def test_monthly_windows_have_months_across_and_years_down() -> None:
    tasks = [
        task(utc(2026, 11, 1), "P1M", "COMPLETE"),
        task(utc(2026, 12, 1), "P1M"),
        task(utc(2027, 1, 1), "P1M"),
    ]
    [cal] = build(tasks)
    assert cal.layout == "year"
    assert cal.sections[0].columns == (
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    )
    text = render_text(tasks)
    header = line_starting(text, "      Jan")
    assert line_starting(text, "2026  ")[header.index("Nov")] == "C"
    assert line_starting(text, "2026  ")[header.index("Dec")] == "."
    assert cells(line_starting(text, "2027  ")) == ["2027", "."]


def test_quarterly_windows_get_four_columns() -> None:
    tasks = [task(utc(2026, 2, 1), "P3M"), task(utc(2026, 5, 1), "P3M")]
    [cal] = build(tasks)
    assert cal.sections[0].columns == ("Feb", "May", "Aug", "Nov")
    assert render_text(tasks).startswith("call_mom  P3M @ day 1 00:00Z\n")


def test_other_intervals_are_listed() -> None:
    tasks = [task(utc(2026, 12, 1) + 7 * i * DAY, "P7D", "COMPLETE") for i in range(3)]
    [cal] = build(tasks)
    assert cal.layout == "list"
    text = render_text(tasks)
    assert text.startswith("call_mom  P7D @ Tue 00:00Z\n")
    assert [ln for ln in text.splitlines() if ln.startswith("2026-12-") and "Z  " in ln] == [
        "2026-12-01T00:00:00Z  COMPLETE",
        "2026-12-08T00:00:00Z  COMPLETE",
        "2026-12-15T00:00:00Z  COMPLETE",
    ]


def test_each_name_gets_its_own_calendar_in_name_order() -> None:
    tasks = [task(utc(2026, 12, 1), name="zeta"), task(utc(2026, 12, 1), "PT1H", name="alpha")]
    cals = build(tasks)
    assert [(c.name, c.layout) for c in cals] == [("alpha", "day"), ("zeta", "month")]
    text = render_text(tasks)
    assert text.index("alpha  PT1H @ 00:00Z") < text.index("zeta  P1D @ 00:00Z")


def test_windows_at_the_end_of_time_do_not_break_the_grid() -> None:
    daily = [task(utc(9999, 12, 30), status="COMPLETE"), task(utc(9999, 12, 31))]
    text = render_text(daily)
    assert "9999-12-30T00:00:00Z  COMPLETE" in text and "9999-12-31T00:00:00Z  AVAILABLE" in text
    yearly = [task(utc(9998, 1, 1), "P1Y"), task(utc(9999, 1, 1), "P1Y", "SKIP")]
    assert "9999  SKIP" in render_text(yearly).splitlines()
    assert "9999" in render_markdown(daily + yearly)


def test_no_windows() -> None:
    assert render_text([]) == "no windows\n"
    assert render_markdown([]) == "_no windows_\n"


def test_failures_are_listed_worst_first_and_capped() -> None:
    tasks = [task(utc(2026, 12, 1) + i * DAY, fails=i + 1, message=f"m{i}") for i in range(12)]
    text = render_text(tasks)
    failures = text[text.index("failures (most first):") :].splitlines()[1:]
    assert failures[0].startswith("  2026-12-12T00:00:00Z  AVAILABLE  failed 12x  m11")
    assert failures[-1] == "  ... and 2 more"
    assert len(failures) == 11


# -- hostile text ----------------------------------------------------------------------------------


def test_control_characters_in_names_and_messages_are_escaped() -> None:
    tasks = [task(utc(2026, 12, 1), name="evil\x1b[2Jname", fails=1, message="line1\nline2\x1b]0;pwn\x07")]
    text = render_text(tasks)
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[2Jname" in text
    assert "line1\\nline2\\x1b]0;pwn\\x07" in text
    assert "\x1b" not in render_markdown(tasks)


def test_long_messages_are_shortened_in_the_failure_list() -> None:
    tasks = [task(utc(2026, 12, 1), fails=1, message="x" * 10_000)]
    [line] = [ln for ln in render_text(tasks).splitlines() if "failed 1x" in ln]
    assert len(line) < 250 and line.endswith("…")


# -- Markdown --------------------------------------------------------------------------------------


def test_markdown_month_table() -> None:
    md = render_markdown(december())
    lines = md.splitlines()
    assert lines[0] == "**call\\_mom** · `P1D` @ 00:00Z"
    assert lines[2] == (
        "2026-12-01 to 2026-12-08 (UTC), 7 windows: "
        "COMPLETE 3, SKIP 1, ACQUIRED 1, AVAILABLE 2 (1 after failing)"
    )
    assert "**December 2026**" in lines
    i = lines.index("| Week | Mon | Tue | Wed | Thu | Fri | Sat | Sun |")
    assert lines[i + 1] == "|---|---|---|---|---|---|---|---|"
    assert lines[i + 2] == (
        "| W49 |  | 1 ✅ COMPLETE | 2 ✅ COMPLETE | 3 ⏭️ SKIP | 4 ⏳ ACQUIRED | 5 ⬜ AVAILABLE "
        "| 6 ❌ AVAILABLE !2 |"
    )
    assert lines[i + 3] == "| W50 | 7 ✅ COMPLETE | 8 | 9 | 10 | 11 | 12 | 13 |"
    assert "!n: failed n times" in lines
    # every table row has as many cells as the header
    for line in lines:
        if re.match(r"\| W\d", line):
            assert line.count("|") == 9
    assert "| 2026-12-06T00:00:00Z | AVAILABLE | 2 | no answer |" in lines


def test_markdown_escapes_table_breaking_text() -> None:
    tasks = [task(utc(2026, 12, 1), name="a|b*c", fails=3, message="x | y\nz <script>")]
    md = render_markdown(tasks)
    assert md.splitlines()[0].startswith("**a\\|b\\*c**")
    [row] = [ln for ln in md.splitlines() if ln.startswith("| 2026-12-01T00:00:00Z")]
    # the line break stays visible as a backslash-n, escaped so Markdown shows it as typed
    assert row == "| 2026-12-01T00:00:00Z | AVAILABLE | 3 | x \\| y\\\\nz \\<script\\> |"
    assert md_escape("[link](http://x)") == "\\[link\\](http://x)"


def test_markdown_for_other_layouts_has_a_row_per_period() -> None:
    tasks = [task(utc(2026, 12, 1) + timedelta(hours=i), "PT1H", "COMPLETE", fails=i) for i in range(3)]
    md = render_markdown(tasks)
    header = "| Day | " + " | ".join(f"{h:02d}" for h in range(24)) + " |"
    assert header in md
    assert (
        "✅ COMPLETE · ⏭️ SKIP · ⏳ ACQUIRED (running) · ⬜ AVAILABLE · ❌ AVAILABLE after a failure  " in md
    )
    assert "| 2026-12-01 Tue | ✅ | ✅ !1 | ✅ !2 |" + "  |" * 21 in md.splitlines()
