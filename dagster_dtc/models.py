"""Plain records read from the DTC table."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import InvalidInputError
from .intervals import Interval


class Status(str, enum.Enum):
    """The four status words of the Java DTC table, unchanged."""

    AVAILABLE = "AVAILABLE"
    ACQUIRED = "ACQUIRED"
    COMPLETE = "COMPLETE"
    SKIP = "SKIP"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: str | Status) -> Status:
        try:
            return cls(str(value).upper())
        except ValueError:
            raise InvalidInputError(
                f"status {value!r} is not one of {', '.join(s.value for s in cls)}"
            ) from None


class WindowBounds:
    """``window_start`` and ``window_end`` of anything that has a ``bucket_time`` and ``bucket_interval``."""

    bucket_time: datetime
    bucket_interval: str

    @property
    def window_start(self) -> datetime:
        """Inclusive start of the window (aware, UTC)."""
        return self.bucket_time

    @property
    def window_end(self) -> datetime:
        """Exclusive end of the window (aware, UTC)."""
        return Interval.parse(self.bucket_interval).add(self.bucket_time)


@dataclass(frozen=True)
class Task(WindowBounds):
    """One row of the DTC table: the window ``[bucket_time, bucket_time + bucket_interval)`` of ``name``."""

    name: str
    bucket_time: datetime
    bucket_interval: str
    status: Status
    created_by: str | None
    created_at: datetime | None
    acquired_by: str | None
    acquired_at: datetime | None
    completed_at: datetime | None
    fail_count: int
    message: str | None
    generation: int
    attempt: int
    max_attempts: int | None
    not_before: datetime | None
    lease_expires_at: datetime | None
    reopen_requested: bool
    reopened_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Task:
        fields = {k: row[k] for k in cls.__dataclass_fields__}
        fields["status"] = Status(fields["status"])
        return cls(**fields)

    @classmethod
    def from_values(cls, values: Sequence[Any]) -> Task:
        """A record from the values of the ``columns`` query, in field order (the fast path of
        every statement that returns whole rows: no per-row dict, no column names decoded)."""
        status = _STATUS[values[3]]
        return cls(*values[:3], status, *values[4:])

    @property
    def exhausted(self) -> bool:
        """True when the attempt budget is spent: not claimed again until reopened."""
        return (
            self.status is Status.AVAILABLE
            and self.max_attempts is not None
            and self.attempt >= self.max_attempts
        )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.__dataclass_fields__:
            value = getattr(self, key)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Status):
                value = value.value
            out[key] = value
        return out


_STATUS = {s.value: s for s in Status}
