"""Fixtures for the unit tests that need a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from workhorse.settings import Settings
from workhorse.storage import open_storage


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A migrated SQLite database file, closed again."""
    path = tmp_path / "workhorse.db"
    open_storage(Settings(database_url=f"sqlite:///{path}"), migrate=True).close()
    return path
