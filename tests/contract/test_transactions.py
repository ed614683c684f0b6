"""Transactions on both backends: relaxed (non-durable) commits and what they restore."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workhorse.client import Client
from workhorse.domain.task import Outcome, TaskStatus
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction
from workhorse.worker.completer import Completer
from workhorse.worker.fetcher import Fetcher


def _durability(tx: Transaction, dialect: str) -> str:
    """The setting that decides whether this transaction's COMMIT waits for the disk."""
    if dialect == "sqlite":
        row = tx.conn.fetch_one("PRAGMA synchronous")
        assert row is not None
        return {0: "off", 1: "normal", 2: "full", 3: "extra"}[int(row[0])]
    row = tx.conn.fetch_one("SHOW synchronous_commit")
    assert row is not None
    return str(row["synchronous_commit"])


def test_a_relaxed_transaction_commits_without_waiting_for_the_disk(
    storage: Storage,
) -> None:
    dialect = storage.dialect
    client = Client(storage)
    client.register_python("relaxed", {})

    def pause(tx: Transaction) -> str:
        tx.codes.set_paused("default", "relaxed", True)
        return _durability(tx, dialect)

    assert storage.run(pause, durable=False) == (
        "normal" if dialect == "sqlite" else "off"
    )
    assert storage.run(lambda tx: tx.codes.get("default", "relaxed"))["paused"]
    # The next transactions, on the same connection or another, are durable again.
    for _ in range(3):
        after = storage.run(lambda tx: _durability(tx, dialect))
        assert after == ("full" if dialect == "sqlite" else "on")


def test_a_failed_relaxed_transaction_changes_nothing_and_restores_durability(
    storage: Storage,
) -> None:
    dialect = storage.dialect
    client = Client(storage)
    client.register_python("kept", {})

    def pause_then_fail(tx: Transaction) -> None:
        tx.codes.set_paused("default", "kept", True)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        storage.run(pause_then_fail, durable=False)
    assert not storage.run(lambda tx: tx.codes.get("default", "kept"))["paused"]
    after = storage.run(lambda tx: _durability(tx, dialect))
    assert after == ("full" if dialect == "sqlite" else "on")


def test_only_cycles_that_record_outcomes_wait_for_the_disk(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(storage)
    client.register_python("work", {})
    ids = [client.queue("work", "{}") for _ in range(2)]
    durable_flags: list[bool] = []
    real_run = storage.run

    def recording_run(fn: Any, **kw: Any) -> Any:
        durable_flags.append(kw.get("durable", True))
        return real_run(fn, **kw)

    monkeypatch.setattr(storage, "run", recording_run)
    dispatched: list[tuple[str, str]] = []
    fetcher = Fetcher(
        storage,
        completer=Completer(),
        capacity=lambda: 10,
        held=lambda: 0,
        waiting=lambda: 0,
        dispatch=lambda task, token: dispatched.append((task.id, token)),
        claim_args={
            "runner_id": "r1",
            "cluster": "default",
            "project_id": "default",
            "codes": ["work"],
            "packages": False,
            "lease_seconds": 30.0,
        },
        stopping=threading.Event(),
    )
    assert fetcher.run_once([], 10) == 2
    assert sorted(i for i, _ in dispatched) == sorted(ids)
    outcomes = [
        Outcome(task_id=i, lease_token=t, status=TaskStatus.COMPLETE)
        for i, t in dispatched
    ]
    assert fetcher.run_once(outcomes, 10) == 0
    assert durable_flags == [False, True]
    assert all(client.get(i).status is TaskStatus.COMPLETE for i in ids)
