"""Test fixtures: one real PostgreSQL per session (embedded, or $DTC_TEST_DATABASE_URL)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_dtc import TaskStore

from .pg import EmbeddedServer


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of the session's PostgreSQL: $DTC_TEST_DATABASE_URL, else a fresh embedded server."""
    configured = os.environ.get("DTC_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    server = EmbeddedServer.start()
    try:
        yield server.url
    finally:
        server.destroy()


@pytest.fixture
def table_name() -> str:
    """A table of its own for each test, so tests never see each other's windows."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(database_url: str, table_name: str) -> Iterator[TaskStore]:
    s = TaskStore(database_url, table_name, lease_seconds=5, backoff_base=0.0, backoff_max=0.0)
    s.init_schema()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    """A PostgreSQL server for this test alone, for tests that stop, kill or restart it."""
    server = EmbeddedServer.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def tmp_home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dtc-home-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
