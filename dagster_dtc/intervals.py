"""ISO-8601 bucket intervals and the grid of windows they define.

A window grid is an interval (``PT5M``, ``P1D``, ``P1M`` ...) plus an origin instant. Bucket ``k``
starts at ``origin + k * interval``. Fixed-length intervals are plain arithmetic on microseconds;
calendar intervals (months, years) step over calendar months in UTC, so ``P1M`` windows start on the
same day-of-month as the origin (the 1st by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import isodate

from .errors import InvalidIntervalError, InvalidTimeError

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def require_aware(value: datetime, what: str = "time") -> datetime:
    """Return ``value`` in UTC, refusing naive datetimes (their zone would be a guess)."""
    if not isinstance(value, datetime):
        raise InvalidTimeError(f"{what} must be a datetime, got {type(value).__name__}: {value!r}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InvalidTimeError(
            f"{what} {value.isoformat()} has no time zone; pass an aware datetime such as "
            f"{value.replace(tzinfo=UTC).isoformat()} (datetime(..., tzinfo=timezone.utc))"
        )
    return value.astimezone(UTC)


def parse_time(text: str, what: str = "time") -> datetime:
    """Parse ISO-8601 text with an explicit zone (``2026-12-01T00:00:00Z``) or a bare date (UTC midnight)."""
    raw = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return datetime.fromisoformat(raw).replace(tzinfo=UTC)
        except ValueError as exc:
            raise InvalidTimeError(f"{what} {text!r} is not a valid date: {exc}") from None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidTimeError(
            f"{what} {text!r} is not ISO-8601; use a date (2026-12-01) or a time with a zone "
            "(2026-12-01T06:00:00Z or 2026-12-01T06:00:00+01:00)"
        ) from None
    if value.tzinfo is None:
        raise InvalidTimeError(f"{what} {text!r} has no time zone; add one, e.g. {raw}Z for UTC")
    return value.astimezone(UTC)


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + (value.month - 1) + months
    return value.replace(year=index // 12, month=index % 12 + 1)


@dataclass(frozen=True)
class Interval:
    """A parsed ISO-8601 bucket interval with the origin of its grid.

    >>> grid = Interval.parse("P1D")
    >>> grid.floor(datetime(2026, 12, 3, 18, 30, tzinfo=UTC)).isoformat()
    '2026-12-03T00:00:00+00:00'
    >>> Interval.parse("PT1H").end(datetime(2026, 12, 3, 18, tzinfo=UTC)).isoformat()
    '2026-12-03T19:00:00+00:00'
    """

    iso: str
    months: int
    fixed: timedelta
    origin: datetime = EPOCH

    @classmethod
    def parse(cls, text: str | Interval, origin: datetime | None = None) -> Interval:
        """Parse ``text`` (``PT5M``, ``P1D``, ``P1M`` ...) and validate it against ``origin``."""
        if isinstance(text, Interval):
            if origin is None:
                return text
            return cls(text.iso, text.months, text.fixed, _origin(origin, text.months))
        if not isinstance(text, str):
            raise InvalidIntervalError(
                f"interval must be an ISO-8601 duration string such as 'PT5M' or 'P1D', got {text!r}"
            )
        raw = text.strip().upper()
        try:
            parsed = isodate.parse_duration(raw)
        except (isodate.ISO8601Error, ValueError, TypeError):
            raise InvalidIntervalError(
                f"interval {text!r} is not an ISO-8601 duration; use e.g. PT5M, PT1H, P1D, P1W, P1M, P1Y "
                "or P1DT12H"
            ) from None
        if isinstance(parsed, isodate.Duration):
            months = int(parsed.years) * 12 + int(parsed.months)
            if parsed.years != int(parsed.years) or parsed.months != int(parsed.months):
                raise InvalidIntervalError(
                    f"interval {text!r} has fractional months or years; use whole ones"
                )
            fixed = parsed.tdelta
        else:
            months, fixed = 0, parsed
        if months and fixed:
            raise InvalidIntervalError(
                f"interval {text!r} mixes calendar months/years with days or hours; the grid would drift. "
                "Use a pure calendar interval (P1M, P3M, P1Y) or a fixed one (P30D, PT36H)"
            )
        if months < 0 or fixed < timedelta(0) or (months == 0 and fixed == timedelta(0)):
            raise InvalidIntervalError(f"interval {text!r} must be positive; e.g. PT5M or P1D")
        if fixed and fixed % _US:
            raise InvalidIntervalError(f"interval {text!r} is finer than a microsecond")
        return cls(raw, months, fixed, _origin(origin, months))

    @property
    def is_calendar(self) -> bool:
        """True for month/year intervals, whose length varies with the calendar."""
        return self.months > 0

    def with_origin(self, origin: datetime) -> Interval:
        return Interval(self.iso, self.months, self.fixed, _origin(origin, self.months))

    def floor(self, instant: datetime) -> datetime:
        """Start of the bucket that contains ``instant``."""
        t = require_aware(instant)
        if self.months:
            span = (t.year - self.origin.year) * 12 + (t.month - self.origin.month)
            k = span // self.months
            start = _add_months(self.origin, k * self.months)
            while start > t:
                k -= 1
                start = _add_months(self.origin, k * self.months)
            return start
        k = (t - self.origin) // self.fixed
        return self.origin + k * self.fixed

    def ceil(self, instant: datetime) -> datetime:
        """First bucket start at or after ``instant``."""
        start = self.floor(instant)
        return start if start == require_aware(instant) else self.next(start)

    def shift(self, bucket: datetime, steps: int) -> datetime:
        """The bucket ``steps`` intervals after (negative: before) ``bucket``."""
        start = self.check_bucket(bucket)
        if self.months:
            return _add_months(start, steps * self.months)
        return start + steps * self.fixed

    def add(self, instant: datetime, steps: int = 1) -> datetime:
        """``instant`` moved by ``steps`` intervals, without requiring it to be on this grid."""
        t = require_aware(instant)
        return _add_months(t, steps * self.months) if self.months else t + steps * self.fixed

    def next(self, bucket: datetime) -> datetime:
        return self.shift(bucket, 1)

    def previous(self, bucket: datetime) -> datetime:
        return self.shift(bucket, -1)

    def end(self, bucket: datetime) -> datetime:
        """Exclusive end of the window that starts at ``bucket``."""
        return self.next(bucket)

    def is_aligned(self, instant: datetime) -> bool:
        return self.floor(instant) == require_aware(instant)

    def check_bucket(self, bucket: datetime, what: str = "bucket_time") -> datetime:
        """Return ``bucket`` in UTC, or explain which grid point was probably meant."""
        t = require_aware(bucket, what)
        floor = self.floor(t)
        if floor != t:
            raise InvalidTimeError(
                f"{what} {t.isoformat()} is not on the {self.iso} grid (origin {self.origin.isoformat()}); "
                f"the window containing it starts at {floor.isoformat()}"
            )
        return t

    def buckets(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Bucket starts ``b`` with ``start <= b < end``."""
        current, stop = self.ceil(start), require_aware(end, "end")
        while current < stop:
            yield current
            current = self.next(current)

    def bounds(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """First and last bucket of ``[start, end)``, or None when the range holds no bucket."""
        s, e = require_aware(start, "start"), require_aware(end, "end")
        if e <= s:
            raise InvalidTimeError(f"range end {e.isoformat()} must be after start {s.isoformat()}")
        first = self.ceil(s)
        if first >= e:
            return None
        last = self.floor(e - _US)
        return first, last

    def count(self, start: datetime, end: datetime) -> int:
        span = self.bounds(start, end)
        if span is None:
            return 0
        first, last = span
        if self.months:
            months = (last.year - first.year) * 12 + (last.month - first.month)
            return months // self.months + 1
        return (last - first) // self.fixed + 1

    def __str__(self) -> str:
        return self.iso


def _origin(origin: datetime | None, months: int = 0) -> datetime:
    if origin is None:
        return EPOCH
    value = require_aware(origin, "origin")
    if months and value.day > 28:
        raise InvalidIntervalError(
            f"origin {value.isoformat()} falls on day {value.day}; calendar intervals need an origin on "
            "day 1-28 so every month has that day"
        )
    return value
