"""Transactions on both backends: relaxed (non-durable) commits and what they restore."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workhorse.client import Client
from workhorse.domain.task import Outcome, TaskStatus
from workhorse.queues import MessageQueues
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


def test_a_reservation_does_not_wait_for_the_disk_but_a_pop_does(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reservation lost to a crash only puts its message back in line (ADR 0007);
    # a pop removes the message, so it is durable.
    mq = MessageQueues(storage)
    mq.post("jobs", ["a", "b"])
    calls: list[tuple[bool, bool]] = []
    real_run = storage.run

    def recording_run(fn: Any, **kw: Any) -> Any:
        calls.append((kw.get("durable", True), kw.get("single_statement", False)))
        return real_run(fn, **kw)

    monkeypatch.setattr(storage, "run", recording_run)
    (reserved,) = mq.reserve("jobs", 1)
    (popped,) = mq.reserve("jobs", 1, delete=True)
    monkeypatch.undo()
    assert (reserved.body, popped.body) == ("a", "b")
    if storage.dialect == "sqlite":
        assert calls == [(False, False), (True, False)]
    else:  # one autocommitted statement that relaxes itself (next test), then a pop
        assert calls == [(True, True), (True, False)]


def test_the_one_statement_reservation_relaxes_only_its_own_commit(
    pg_storage: Storage,
) -> None:
    mq = MessageQueues(pg_storage)
    mq.post("jobs", ["a"])
    with pg_storage.db.transaction() as conn:
        tx = Transaction(conn, pg_storage.db)
        assert len(tx.messages.reserve_ready("default", "jobs", n=1, timeout=None)) == 1
        assert _durability(tx, "postgres") == "off"
    with pg_storage.db.transaction() as conn:  # the same pooled connection
        assert _durability(Transaction(conn, pg_storage.db), "postgres") == "on"
