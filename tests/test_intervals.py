"""The bucket grid: ISO-8601 parsing, floor/ceil/next/previous/end, buckets and counts, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dagster_dtc import Interval, InvalidIntervalError, InvalidTimeError, parse_time

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "months", "fixed"),
    [
        ("PT5M", 0, timedelta(minutes=5)),
        ("PT1H", 0, timedelta(hours=1)),
        ("P1D", 0, timedelta(days=1)),
        ("P1W", 0, timedelta(days=7)),
        ("P1M", 1, timedelta(0)),
        ("P3M", 3, timedelta(0)),
        ("P1Y", 12, timedelta(0)),
        ("P1DT12H", 0, timedelta(hours=36)),
        ("pt15m", 0, timedelta(minutes=15)),
        (" P1D ", 0, timedelta(days=1)),
    ],
)
def test_parse(text: str, months: int, fixed: timedelta) -> None:
    grid = Interval.parse(text)
    assert (grid.months, grid.fixed) == (months, fixed)
    assert grid.is_calendar == (months > 0)
    assert grid.iso == text.strip().upper()
    assert str(grid) == grid.iso
    assert grid.origin == utc(1970, 1, 1)


def test_parse_accepts_an_interval_and_replaces_its_origin() -> None:
    grid = Interval.parse("P1D")
    assert Interval.parse(grid) is grid
    moved = Interval.parse(grid, utc(2026, 1, 1, 6))
    assert moved.origin == utc(2026, 1, 1, 6)
    assert (moved.months, moved.fixed) == (0, timedelta(days=1))


@pytest.mark.parametrize(
    ("text", "instant", "floor", "ceil", "nxt", "prev"),
    [
        (
            "PT5M",
            utc(2026, 12, 3, 18, 7, 30),
            utc(2026, 12, 3, 18, 5),
            utc(2026, 12, 3, 18, 10),
            utc(2026, 12, 3, 18, 10),
            utc(2026, 12, 3, 18, 0),
        ),
        (
            "PT1H",
            utc(2026, 12, 3, 18, 59, 59),
            utc(2026, 12, 3, 18),
            utc(2026, 12, 3, 19),
            utc(2026, 12, 3, 19),
            utc(2026, 12, 3, 17),
        ),
        (
            "P1D",
            utc(2026, 12, 3, 0, 0, 1),
            utc(2026, 12, 3),
            utc(2026, 12, 4),
            utc(2026, 12, 4),
            utc(2026, 12, 2),
        ),
        # 1970-01-01 (the default origin) was a Thursday, so weekly windows start on Thursdays.
        (
            "P1W",
            utc(2026, 12, 1, 12),
            utc(2026, 11, 26),
            utc(2026, 12, 3),
            utc(2026, 12, 3),
            utc(2026, 11, 19),
        ),
        ("P1M", utc(2026, 2, 14, 9), utc(2026, 2, 1), utc(2026, 3, 1), utc(2026, 3, 1), utc(2026, 1, 1)),
        (
            "P1M",
            utc(2026, 12, 31, 23, 59),
            utc(2026, 12, 1),
            utc(2027, 1, 1),
            utc(2027, 1, 1),
            utc(2026, 11, 1),
        ),
        ("P1Y", utc(2026, 7, 4), utc(2026, 1, 1), utc(2027, 1, 1), utc(2027, 1, 1), utc(2025, 1, 1)),
        # 36-hour windows from the epoch: 1970-01-01T00, 1970-01-02T12, 1970-01-04T00 ...
        (
            "P1DT12H",
            utc(1970, 1, 3, 1),
            utc(1970, 1, 2, 12),
            utc(1970, 1, 4),
            utc(1970, 1, 4),
            utc(1970, 1, 1),
        ),
    ],
)
def test_floor_ceil_next_previous(
    text: str, instant: datetime, floor: datetime, ceil: datetime, nxt: datetime, prev: datetime
) -> None:
    grid = Interval.parse(text)
    assert grid.floor(instant) == floor
    assert grid.ceil(instant) == ceil
    assert grid.next(floor) == nxt
    assert grid.end(floor) == nxt
    assert grid.previous(floor) == prev
    assert grid.is_aligned(floor)
    assert not grid.is_aligned(instant)
    # on-grid instants are their own floor and ceil
    assert grid.floor(floor) == floor
    assert grid.ceil(floor) == floor


def test_floor_before_the_origin() -> None:
    assert Interval.parse("P1D").floor(utc(1969, 12, 31, 23)) == utc(1969, 12, 31)
    assert Interval.parse("P1M").floor(utc(1969, 6, 15)) == utc(1969, 6, 1)
    assert Interval.parse("PT5M").floor(utc(1969, 12, 31, 23, 59, 59)) == utc(1969, 12, 31, 23, 55)


def test_daily_grid_with_a_06_00z_origin() -> None:
    grid = Interval.parse("P1D", utc(2026, 1, 1, 6))
    assert grid.floor(utc(2026, 12, 3, 5, 59)) == utc(2026, 12, 2, 6)
    assert grid.floor(utc(2026, 12, 3, 6)) == utc(2026, 12, 3, 6)
    assert grid.ceil(utc(2026, 12, 3, 5)) == utc(2026, 12, 3, 6)
    assert grid.end(utc(2026, 12, 3, 6)) == utc(2026, 12, 4, 6)
    # the origin is a grid point, not a lower bound
    assert grid.floor(utc(2025, 6, 1)) == utc(2025, 5, 31, 6)
    assert list(grid.buckets(utc(2026, 3, 1), utc(2026, 3, 4))) == [
        utc(2026, 3, 1, 6),
        utc(2026, 3, 2, 6),
        utc(2026, 3, 3, 6),
    ]
    assert grid.count(utc(2026, 3, 1), utc(2026, 3, 4)) == 3
    assert grid.count(utc(2026, 3, 1, 7), utc(2026, 3, 2, 6)) == 0
    with pytest.raises(InvalidTimeError, match=r"starts at 2026-12-02T06:00:00\+00:00"):
        grid.check_bucket(utc(2026, 12, 3))


def test_calendar_months_are_taken_in_utc() -> None:
    grid = Interval.parse("P1M")
    plus_two = timezone(timedelta(hours=2))
    # 00:30 on 1 March at UTC+2 is still February in UTC
    assert grid.floor(datetime(2026, 3, 1, 0, 30, tzinfo=plus_two)) == utc(2026, 2, 1)
    minus_five = timezone(timedelta(hours=-5))
    # 20:00 on 31 January at UTC-5 is already February in UTC
    assert grid.floor(datetime(2026, 1, 31, 20, tzinfo=minus_five)) == utc(2026, 2, 1)
    # results are always UTC
    assert grid.floor(datetime(2026, 3, 1, 0, 30, tzinfo=plus_two)).utcoffset() == timedelta(0)
    # month lengths vary: February is 28 days, the window end follows the calendar
    assert grid.end(utc(2026, 2, 1)) - utc(2026, 2, 1) == timedelta(days=28)
    assert grid.end(utc(2028, 2, 1)) - utc(2028, 2, 1) == timedelta(days=29)
    assert grid.end(utc(2026, 1, 1)) - utc(2026, 1, 1) == timedelta(days=31)


def test_calendar_months_from_a_mid_month_origin() -> None:
    grid = Interval.parse("P1M", utc(2026, 1, 15, 6))
    assert grid.floor(utc(2026, 3, 15, 5)) == utc(2026, 2, 15, 6)
    assert grid.floor(utc(2026, 3, 15, 6)) == utc(2026, 3, 15, 6)
    assert grid.next(utc(2026, 12, 15, 6)) == utc(2027, 1, 15, 6)
    quarterly = Interval.parse("P3M")
    assert quarterly.floor(utc(2026, 5, 5)) == utc(2026, 4, 1)
    assert quarterly.next(utc(2026, 10, 1)) == utc(2027, 1, 1)


def test_buckets_and_count() -> None:
    five = Interval.parse("PT5M")
    got = list(five.buckets(utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 20)))
    assert got == [utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 10), utc(2026, 1, 1, 0, 15)]
    assert five.count(utc(2026, 1, 1, 0, 2), utc(2026, 1, 1, 0, 20)) == 3
    # end is exclusive
    assert five.count(utc(2026, 1, 1), utc(2026, 1, 1, 0, 5)) == 1
    assert five.count(utc(2026, 1, 1), utc(2026, 1, 2)) == 288
    assert five.bounds(utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 4)) is None

    monthly = Interval.parse("P1M")
    assert list(monthly.buckets(utc(2026, 1, 15), utc(2026, 5, 1))) == [
        utc(2026, 2, 1),
        utc(2026, 3, 1),
        utc(2026, 4, 1),
    ]
    assert monthly.count(utc(2026, 1, 15), utc(2026, 5, 1)) == 3
    assert monthly.count(utc(2020, 1, 1), utc(2030, 1, 1)) == 120
    assert Interval.parse("P1Y").count(utc(2020, 1, 1), utc(2030, 1, 2)) == 11
    assert Interval.parse("P1W").count(utc(2026, 1, 1), utc(2027, 1, 1)) == 53
    # count agrees with the enumeration on awkward ranges
    for text in ("PT5M", "P1D", "P1DT12H", "P1M", "P3M"):
        grid = Interval.parse(text)
        start, end = utc(2025, 11, 30, 17, 3), utc(2026, 2, 3, 4, 5)
        assert grid.count(start, end) == len(list(grid.buckets(start, end))), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT0S", "must be positive"),
        ("P0D", "must be positive"),
        ("P0M", "must be positive"),
        ("-P1D", "must be positive"),
        ("-PT5M", "must be positive"),
        ("1 day", "not an ISO-8601 duration; use e.g. PT5M"),
        ("5 minutes", "not an ISO-8601 duration"),
        ("daily", "not an ISO-8601 duration"),
        ("", "not an ISO-8601 duration"),
        ("P", "not an ISO-8601 duration"),
        ("P1.5M", "fractional months"),
        ("P1M1D", "mixes calendar months/years with days"),
        ("P1YT1H", "mixes calendar months/years"),
    ],
)
def test_bad_intervals_are_rejected_with_a_hint(text: str, expected: str) -> None:
    with pytest.raises(InvalidIntervalError, match=expected) as info:
        Interval.parse(text)
    assert "P" in str(info.value)  # every message names the offending text or an example


@pytest.mark.parametrize("value", [None, 5, timedelta(days=1)])
def test_non_string_intervals_are_rejected(value: object) -> None:
    with pytest.raises(InvalidIntervalError, match="ISO-8601 duration string such as 'PT5M'"):
        Interval.parse(value)  # type: ignore[arg-type]


def test_calendar_origin_must_exist_in_every_month() -> None:
    with pytest.raises(InvalidIntervalError, match="day 31; calendar intervals need an origin on day 1-28"):
        Interval.parse("P1M", utc(2026, 1, 31))
    with pytest.raises(InvalidIntervalError, match="day 29"):
        Interval.parse(Interval.parse("P1M"), utc(2026, 1, 29))
    with pytest.raises(InvalidIntervalError, match="day 30"):
        Interval.parse("P1Y").with_origin(utc(2026, 4, 30))
    # fixed intervals do not care
    assert Interval.parse("P1D", utc(2026, 1, 31)).origin == utc(2026, 1, 31)


def test_naive_datetimes_are_rejected_with_the_aware_spelling() -> None:
    grid = Interval.parse("P1D")
    naive = datetime(2026, 12, 3)
    for call in (grid.floor, grid.ceil, grid.next, grid.check_bucket, grid.is_aligned):
        with pytest.raises(InvalidTimeError, match=r"has no time zone; pass an aware datetime such as "):
            call(naive)
    with pytest.raises(InvalidTimeError, match=r"2026-12-03T00:00:00\+00:00"):
        grid.floor(naive)
    with pytest.raises(InvalidTimeError, match="no time zone"):
        list(grid.buckets(utc(2026, 1, 1), naive))
    with pytest.raises(InvalidTimeError, match="origin"):
        Interval.parse("P1D", naive)
    with pytest.raises(InvalidTimeError, match="must be a datetime"):
        grid.floor("2026-12-03")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "bucket", "right"),
    [
        ("P1D", utc(2026, 12, 3, 6), "2026-12-03T00:00:00+00:00"),
        ("PT5M", utc(2026, 12, 3, 6, 7), "2026-12-03T06:05:00+00:00"),
        ("P1M", utc(2026, 12, 3), "2026-12-01T00:00:00+00:00"),
        ("PT1H", utc(2026, 12, 3, 6, 0, 0, 1), "2026-12-03T06:00:00+00:00"),
    ],
)
def test_misaligned_buckets_name_the_window_they_fall_in(text: str, bucket: datetime, right: str) -> None:
    grid = Interval.parse(text)
    with pytest.raises(InvalidTimeError) as info:
        grid.check_bucket(bucket)
    message = str(info.value)
    assert f"not on the {text} grid" in message
    assert f"starts at {right}" in message
    with pytest.raises(InvalidTimeError, match="not on the"):
        grid.next(bucket)


def test_empty_or_reversed_range_is_rejected() -> None:
    grid = Interval.parse("P1D")
    with pytest.raises(InvalidTimeError, match="must be after start"):
        grid.count(utc(2026, 3, 4), utc(2026, 3, 1))
    with pytest.raises(InvalidTimeError, match="must be after start"):
        grid.bounds(utc(2026, 3, 1), utc(2026, 3, 1))


def test_parse_time() -> None:
    assert parse_time("2026-12-01") == utc(2026, 12, 1)
    assert parse_time("2026-12-01T06:00:00Z") == utc(2026, 12, 1, 6)
    assert parse_time("2026-12-01T07:00:00+01:00") == utc(2026, 12, 1, 6)
    with pytest.raises(InvalidTimeError, match=r"has no time zone; add one, e\.g\. 2026-12-01T06:00:00Z"):
        parse_time("2026-12-01T06:00:00")
    with pytest.raises(InvalidTimeError, match="not ISO-8601"):
        parse_time("yesterday")
    with pytest.raises(InvalidTimeError, match="not a valid date"):
        parse_time("2026-02-30")
