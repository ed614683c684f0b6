"""Helpers shared by the contract tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

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


def run_model(machine: type[RuleBasedStateMachine], url: str, *, examples: int) -> None:
    """Run a model-based state machine (one whose class reads the database from `url`)
    for `examples` sequences of up to 30 steps, the same ones every run."""
    run_state_machine_as_test(
        type("Machine", (machine,), {"url": url}),
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            derandomize=True,
        ),
    )
