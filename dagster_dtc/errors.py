"""Exceptions raised by dagster-dtc. Each message says what was wrong and how to put it right."""

from __future__ import annotations


class DTCError(Exception):
    """Base class for every dagster-dtc error."""


class InvalidInputError(DTCError, ValueError):
    """An argument was rejected before anything touched the database."""


class InvalidIntervalError(InvalidInputError):
    """Not a positive ISO-8601 duration we can build a grid from."""


class InvalidTimeError(InvalidInputError):
    """A naive datetime, a time off the bucket grid, or an empty range."""


class InvalidIdentifierError(InvalidInputError):
    """A table or schema name that is not a plain SQL identifier."""


class InvalidDatabaseURLError(InvalidInputError):
    """The database URL cannot be parsed or is not PostgreSQL."""


class DatabaseUnavailableError(DTCError):
    """The server could not be reached or dropped the connection. Safe to retry."""


class SchemaMissingError(DTCError):
    """The DTC table does not exist yet: run ``init_schema()`` (or ``dagster-dtc init``)."""


class WindowNotFoundError(DTCError, LookupError):
    """No row exists for the (name, bucket_time) asked for."""


class WindowHeldError(DTCError):
    """Another worker holds the window (status ACQUIRED, lease still valid, or row locked)."""


class WindowNotAvailableError(DTCError):
    """The window is COMPLETE or SKIP and re-running it was not requested."""


class StaleClaimError(DTCError):
    """The claim's token no longer matches the row: the window was reopened, reclaimed or expired.

    Nothing was changed. ``current`` holds the row as it is now, when it still exists.
    """

    def __init__(self, message: str, current: object | None = None) -> None:
        super().__init__(message)
        self.current = current


class IntervalMismatchError(InvalidInputError):
    """Windows of one name must share one interval."""
