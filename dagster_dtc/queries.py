"""Loads the named SQL of ``sql/queries.sql`` and binds it to one validated table name."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from psycopg import sql

from .schema import TableName

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _raw_queries() -> dict[str, str]:
    text = resources.files("dagster_dtc").joinpath("sql/queries.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        queries[name] = "\n".join(lines).strip()
    return queries


class Queries:
    """The named queries composed for one table; ``queries["claim"]`` is ready to execute."""

    def __init__(self, table: TableName, order: str = "ASC") -> None:
        raw = _raw_queries()
        columns = raw["columns"]
        prefixed = ", ".join("t." + part.strip() for part in columns.split(","))
        self._composed: dict[str, sql.Composed] = {}
        for name, text in raw.items():
            if name == "columns":
                continue
            for direction in ("ASC", "DESC"):
                key = name if direction == "ASC" else f"{name}:desc"
                if direction == "DESC" and "{order}" not in text:
                    continue
                self._composed[key] = sql.SQL(text).format(
                    table=table.identifier,
                    columns=sql.SQL(columns),
                    returning=sql.SQL(prefixed),
                    order=sql.SQL(direction),
                )

    def __getitem__(self, name: str) -> sql.Composed:
        return self._composed[name]
