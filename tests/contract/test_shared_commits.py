"""Single writes from concurrent threads (storage.shared_commits): on SQLite the
writes that wait behind a commit share the next one; on PostgreSQL they go
straight through, concurrently. Either way each caller hears its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.contract.test_tasks import client_with_codes
from workhorse.client import Client
from workhorse.domain.task import TaskOptions, TaskStatus
from workhorse.errors import InvalidInput
from workhorse.queues import MessageQueues
from workhorse.storage import Storage
from workhorse.storage.shared_commits import SharedCommits
from workhorse.storage.stores import Transaction

WAIT = 10.0  # seconds any step may take before the test fails


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


class Caller(threading.Thread):
    """A thread making one write through `shared`; keeps its result or error."""

    def __init__(
        self,
        shared: SharedCommits,
        fn: Callable[[Transaction], Any],
        *,
        one_row: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self.shared, self.fn, self.one_row = shared, fn, one_row
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.shared.run(
                self.fn, single_statement=True, one_row=self.one_row
            )
        except BaseException as exc:  # kept for the test to look at
            self.error = exc

    def finish(self) -> None:
        self.join(WAIT)
        assert not self.is_alive(), "a write never finished"


def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (state another thread reaches; no event to await)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition never reached"
        time.sleep(0.001)


def in_threads(work: Callable[[int], None], threads: int) -> None:
    """`work(i)` in `threads` threads at once; fails if any raised or hung."""
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(WAIT * 3)
        assert not w.is_alive(), "a thread never finished"
    assert not errors, errors


def task_write(client: Client, payload: str) -> Callable[[Transaction], Any]:
    """A write that queues one task of `work`; returns (task id, the transaction)."""

    def write(tx: Transaction) -> tuple[str, Transaction]:
        task = client.build(tx, "work", payload, TaskOptions())
        tx.tasks.enqueue(task)
        return task.id, tx

    return write


@contextmanager
def first_write_held(
    client: Client, shared: SharedCommits, *, one_row: bool = False
) -> Iterator[Caller]:
    """A write that holds its commit open until the block ends (then it lands)."""
    entered, release = threading.Event(), threading.Event()

    def held(tx: Transaction) -> tuple[str, Transaction]:
        entered.set()
        assert release.wait(WAIT)
        return task_write(client, "first")(tx)

    first = Caller(shared, held, one_row=one_row)
    first.start()
    assert entered.wait(WAIT)
    try:
        yield first
    finally:
        release.set()
        first.finish()


def shares(shared: SharedCommits, one_row: bool = False) -> bool:
    """Whether writes wait for each other's commits: on SQLite, or on PostgreSQL
    when they all change one row."""
    return shared.storage.dialect == "sqlite" or one_row


def arrived(shared: SharedCommits, callers: list[Caller]) -> None:
    """Start callers; where writes share commits, return once all of them wait
    behind the one being committed."""
    for caller in callers:
        caller.start()
    if shares(shared, callers[0].one_row):
        until(lambda: shared.waiting() == len(callers))
    else:  # straight through: they finish while the first is still open
        for caller in callers:
            caller.finish()


@pytest.mark.parametrize("one_row", [False, True], ids=["rows", "one-row"])
def test_writes_that_wait_share_the_next_commit(client: Client, one_row: bool) -> None:
    shared = SharedCommits(client.storage)
    others = [
        Caller(shared, task_write(client, f"p{i}"), one_row=one_row) for i in range(3)
    ]
    with first_write_held(client, shared, one_row=one_row) as first:
        arrived(shared, others)
    for caller in others:
        caller.finish()
        assert caller.error is None
    assert first.error is None
    transactions = {id(c.result[1]) for c in others}
    # Shared: one transaction for the three; else one each, all concurrent.
    assert len(transactions) == (1 if shares(shared, one_row) else 3)
    assert id(first.result[1]) not in transactions
    for task_id, _ in [first.result, *(c.result for c in others)]:
        assert client.get(task_id).status == TaskStatus.QUEUED


def test_a_failing_write_fails_only_its_caller(client: Client) -> None:
    shared = SharedCommits(client.storage)

    def refused(tx: Transaction) -> None:
        raise InvalidInput("this one is refused")

    good = [Caller(shared, task_write(client, f"good{i}")) for i in range(2)]
    bad = Caller(shared, refused)
    with first_write_held(client, shared):
        arrived(shared, [good[0], bad, good[1]])
    for caller in [*good, bad]:
        caller.finish()
    assert isinstance(bad.error, InvalidInput)
    assert all(c.error is None for c in good)
    stored = [t.payload for _, t in client.list(limit=100)]
    assert sorted(stored) == ["first", "good0", "good1"]  # each once


class Interrupt(BaseException):
    """Stands for a KeyboardInterrupt in the thread that is committing."""


def test_an_interrupted_commit_leaves_no_caller_waiting(client: Client) -> None:
    shared = SharedCommits(client.storage)

    def interrupted(tx: Transaction) -> None:
        raise Interrupt

    callers = [
        Caller(shared, interrupted),
        Caller(shared, task_write(client, "after")),
    ]
    with first_write_held(client, shared):
        arrived(shared, callers)
    for caller in callers:
        caller.finish()
    errors = [type(c.error) for c in callers]
    if client.storage.dialect == "sqlite":
        # The two shared a commit. The thread that ran it raised the interrupt;
        # the other heard that its write was interrupted (it was rolled back).
        assert sorted(e.__name__ for e in errors) == ["Interrupt", "WorkhorseError"]
        assert [t.payload for _, t in client.list(limit=10)] == ["first"]
    else:  # straight through: the interrupt stays in its own thread
        assert errors == [Interrupt, type(None)]
    assert shared.waiting() == 0
    # and the next write goes through
    task_id, _ = shared.run(task_write(client, "next"))
    assert client.get(task_id).payload == "next"


def test_many_threads_queueing_at_once_store_every_task_once(client: Client) -> None:
    threads, each = 8, 25
    ids: list[list[str]] = [[] for _ in range(threads)]

    def producer(i: int) -> None:
        for j in range(each):
            ids[i].append(client.queue("work", f"t{i}-{j}"))

    in_threads(producer, threads)
    every = [task_id for per in ids for task_id in per]
    assert len(set(every)) == threads * each
    stored = {t.id: t.payload for _, t in client.list(limit=1000)}
    assert set(stored) == set(every)
    for i, per in enumerate(ids):  # each id names its caller's payload
        assert [stored[t] for t in per] == [f"t{i}-{j}" for j in range(each)]


def test_many_threads_posting_at_once_keep_each_threads_order(storage: Storage) -> None:
    mq = MessageQueues(storage)
    threads, each = 8, 20

    def producer(i: int) -> None:
        for j in range(each):
            mq.post("jobs", [f"{i}:{j}"])

    in_threads(producer, threads)
    bodies = [m.body for m in mq.reserve("jobs", 100, delete=True)]
    bodies += [m.body for m in mq.reserve("jobs", 100, delete=True)]
    assert len(bodies) == len(set(bodies)) == threads * each
    for i in range(threads):  # the queue is FIFO for each thread's posts
        mine = [b for b in bodies if b.startswith(f"{i}:")]
        assert mine == [f"{i}:{j}" for j in range(each)]
