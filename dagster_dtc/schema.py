"""The DTC table's name and its versioned migrations (``migrations/NNNN_*.sql``).

Migrations run in one transaction under a transaction-level advisory lock, so several processes
starting at once apply each one exactly once. The applied versions are recorded per table in
``dtc_schema_migrations`` next to the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from .errors import InvalidIdentifierError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Longest identifier part we accept: PostgreSQL's limit is 63 bytes and derived names (index,
# trigger, function) append up to 13 characters.
MAX_TABLE_NAME = 50
# One lock for all dagster-dtc migrations: CREATE TABLE IF NOT EXISTS on the shared version table
# is not safe against itself across tables, and migrations are rare.
_MIGRATION_LOCK_KEY = 0x445443_0001
VERSION_TABLE = "dtc_schema_migrations"


@dataclass(frozen=True)
class TableName:
    """A validated, optionally schema-qualified table name such as ``dtc_tasks`` or ``ops.dtc_tasks``."""

    schema: str | None
    name: str

    @classmethod
    def parse(cls, text: str) -> TableName:
        if not isinstance(text, str):
            raise InvalidIdentifierError(f"table name must be a string, got {text!r}")
        parts = text.split(".")
        if len(parts) > 2 or not all(_IDENT.match(p) for p in parts):
            raise InvalidIdentifierError(
                f"table name {text!r} is not a plain identifier; use letters, digits and underscores, "
                "optionally schema-qualified (e.g. dtc_tasks or ops.dtc_tasks)"
            )
        if any(len(p) > MAX_TABLE_NAME for p in parts):
            raise InvalidIdentifierError(
                f"table name {text!r} is too long; keep each part to {MAX_TABLE_NAME} characters"
            )
        schema, name = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
        # PostgreSQL folds unquoted names to lower case; we quote, so fold here to keep a table made
        # by plain SQL (CREATE TABLE DTC_TASKS) and ours the same table.
        return cls(schema.lower() if schema else None, name.lower())

    def _qualified(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name) if self.schema else sql.Identifier(name)

    @property
    def identifier(self) -> sql.Identifier:
        return self._qualified(self.name)

    def derived(self, suffix: str) -> sql.Identifier:
        """A schema-qualified object named after the table (functions)."""
        return self._qualified(f"{self.name}_{suffix}")

    def local(self, suffix: str) -> sql.Identifier:
        """An unqualified name after the table (indexes, constraints, triggers live with the table)."""
        return sql.Identifier(f"{self.name}_{suffix}")

    @property
    def version_table(self) -> sql.Identifier:
        return self._qualified(VERSION_TABLE)

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def __str__(self) -> str:
        return self.key

    def placeholders(self) -> dict[str, Any]:
        return {
            "table": self.identifier,
            "status_check": self.local("status_check"),
            "available_idx": self.local("available_idx"),
            "lease_idx": self.local("lease_idx"),
            "guard_fn": self.derived("guard"),
            "guard_trigger": self.local("guard"),
            "reopen_fn": self.derived("reopen"),
            "skip_fn": self.derived("skip"),
            "version_table": self.version_table,
        }


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str


def migrations() -> list[Migration]:
    folder = resources.files("dagster_dtc").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_(\w+)\.sql$", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


LATEST_VERSION = max(m.version for m in migrations())


def applied_versions(conn: psycopg.Connection[Any], table: TableName) -> set[int]:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        (f'"{table.schema}"."{VERSION_TABLE}"' if table.schema else VERSION_TABLE,),
    ).fetchone()
    if not row or not row[0]:
        return set()
    rows = conn.execute(
        sql.SQL("SELECT version FROM {} WHERE table_name = %s").format(table.version_table), (table.key,)
    ).fetchall()
    return {r[0] for r in rows}


def table_exists(conn: psycopg.Connection[Any], table: TableName) -> bool:
    qualified = f'"{table.schema}"."{table.name}"' if table.schema else f'"{table.name}"'
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    return bool(row and row[0])


def migrate(conn: psycopg.Connection[Any], table: TableName) -> list[str]:
    """Bring ``table`` to the latest version; return the names of the migrations applied."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_KEY,))
        if table.schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(table.schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (table_name text NOT NULL, version integer NOT NULL, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (table_name, version))"
            ).format(table.version_table)
        )
        done = applied_versions(conn, table)
        if done and not table_exists(conn, table):
            # The table was dropped behind our back: its recorded versions describe nothing. Start
            # over, or init_schema would do nothing and every later statement would fail.
            conn.execute(
                sql.SQL("DELETE FROM {} WHERE table_name = %s").format(table.version_table), (table.key,)
            )
            done = set()
        fmt = table.placeholders()
        for migration in migrations():
            if migration.version in done:
                continue
            conn.execute(sql.SQL(migration.text).format(**fmt))  # type: ignore[arg-type]
            conn.execute(
                sql.SQL("INSERT INTO {} (table_name, version, name) VALUES (%s, %s, %s)").format(
                    table.version_table
                ),
                (table.key, migration.version, migration.name),
            )
            applied.append(f"{migration.version:04d}_{migration.name}")
    return applied
