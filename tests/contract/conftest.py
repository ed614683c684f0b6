"""Helpers shared by the contract tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from workhorse.storage import Storage


@pytest.fixture
def lose_first_commit(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], list[int]]:
    """Arm: the next write transaction commits, then its connection is "lost", so the
    caller cannot tell that it landed and tries again. Returns the write-try count
    (a one-item list); reads pass untouched. `monkeypatch.undo()` disarms."""

    def arm() -> list[int]:
        lost = (
            psycopg.OperationalError("server closed the connection unexpectedly")
            if storage.dialect == "postgres"
            else sqlite3.OperationalError("disk I/O error")
        )
        real = storage.db.transaction
        tries = [0]

        @contextmanager
        def commit_then_lose(**kw: Any) -> Iterator[Any]:
            tries[0] += kw.get("write", True)
            with real(**kw) as conn:
                yield conn
            if tries[0] == 1:
                raise lost

        monkeypatch.setattr(storage.db, "transaction", commit_then_lose)
        return tries

    return arm
