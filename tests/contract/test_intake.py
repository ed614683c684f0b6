"""Single enqueues: on SQLite they wait in the intake until admitted (migration
0009); on either backend they must behave like any other queued task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.contract.test_tasks import (
    DISTINCT_OPTIONS,
    NOW,
    claim,
    client_with_codes,
    queue,
)
from workhorse.client import Client
from workhorse.domain.task import TaskOptions, TaskStatus
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage, stores


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


def enqueue(client: Client, n: int = 1, **opts: Any) -> list[str]:
    """Queue tasks one per transaction (the intake's path), at the fixed test time."""
    ids = []
    for i in range(n):
        task = client.storage.run(
            lambda tx, i=i: client.build(
                tx, "work", f'{{"args": [{i}]}}', TaskOptions(**opts)
            )
        )
        client.storage.run(lambda tx, t=task: tx.tasks.enqueue(t, now=NOW))
        ids.append(task.id)
    return ids


_COUNT_INTAKE = {
    "task_intake": "SELECT count(*) AS n FROM task_intake",
    "mq_intake": "SELECT count(*) AS n FROM mq_intake",
}


def intake_size(storage: Storage, table: str = "task_intake") -> int:
    """Rows waiting in one of SQLite's intakes (none elsewhere)."""
    if storage.dialect != "sqlite":
        return 0
    row = storage.run(
        lambda tx: tx.conn.fetch_one(_COUNT_INTAKE[table]),
        write=False,
    )
    assert row is not None
    return int(row["n"])


def test_a_single_task_waits_in_the_intake_on_sqlite(
    storage: Storage, client: Client
) -> None:
    enqueue(client, 2)
    waiting = 2 if storage.dialect == "sqlite" else 0
    assert intake_size(storage) == waiting
    assert storage.run(lambda tx: tx.tasks.admit()) == waiting
    assert intake_size(storage) == 0


def test_a_task_in_the_intake_reads_as_queued_with_every_field(
    storage: Storage, client: Client
) -> None:
    (task_id,) = enqueue(client, **DISTINCT_OPTIONS)
    task = client.get(task_id)
    assert (task.id, task.project_id, task.code_name, task.kind) == (
        task_id,
        "default",
        "work",
        "python",
    )
    assert (task.payload, task.status, task.priority) == (
        '{"args": [0]}',
        TaskStatus.QUEUED,
        2,
    )
    assert (task.timeout, task.label, task.cluster) == (123, "lbl", "gpu")
    assert (task.retries, task.retries_delay, task.backoff) == (4, 9, True)
    assert (task.created_at, task.run_at) == (NOW, NOW + 7.5)
    assert (task.attempt, task.lost_count, task.lease_token) == (0, 0, None)
    assert not task.cancel_requested
    assert storage.run(
        lambda tx: [t.id for t in tx.tasks.get_many("default", [task_id, "nope"])],
        write=False,
    ) == [task_id]
    # Another project does not see it.
    assert storage.run(lambda tx: tx.tasks.get("other", task_id), write=False) is None
    # Admitted, it reads the same.
    storage.run(lambda tx: tx.tasks.admit())
    assert client.get(task_id) == task


def test_counts_and_listings_include_the_intake(
    storage: Storage, client: Client
) -> None:
    batch = queue(client, 2)
    single = enqueue(client, 3)
    assert ("work", "queued", 5) in client.counts()
    listed = [t.id for _, t in client.list(limit=10)]
    assert sorted(listed) == sorted(batch + single)
    assert listed[:3] == single[::-1]  # newest first
    assert intake_size(storage) == 0  # a listing admits, to page by seq


def test_a_task_in_the_intake_can_be_cancelled(
    storage: Storage, client: Client
) -> None:
    (task_id,) = enqueue(client)
    assert client.cancel(task_id).status == TaskStatus.CANCELLED
    assert claim(storage, 5) == []


def test_claims_admit_and_keep_fifo_across_both_paths(
    storage: Storage, client: Client
) -> None:
    # Same time for all: seq breaks the tie, so the intake's tasks must be admitted
    # before the later batch is inserted.
    first = enqueue(client, 2)
    middle = queue(client, 2)
    last = enqueue(client, 2)
    assert [t.id for t in claim(storage, 10)] == first + middle + last
    assert intake_size(storage) == 0


def test_a_claim_admits_a_bounded_share_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = open_storage(
        Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"), migrate=True
    )
    monkeypatch.setattr(stores, "ADMIT_PER_CLAIM", 2)
    ids = enqueue(client_with_codes(storage), 5)
    assert [t.id for t in claim(storage, 10)] == ids[:2]
    assert intake_size(storage) == 3
    assert [t.id for t in claim(storage, 10, token="t2")] == ids[2:4]
    storage.close()


def test_tasks_with_a_parent_or_a_schedule_skip_the_intake(
    storage: Storage, client: Client
) -> None:
    enqueue(client, 1, parent_id="p")
    enqueue(client, 1, schedule_id="s")
    assert intake_size(storage) == 0
    assert storage.run(lambda tx: tx.tasks.children_summary("p"), write=False) == {
        "queued": 1
    }


def test_a_producer_without_runners_admits_a_full_intake(
    storage: Storage, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workhorse.client.INTAKE_LIMIT", 4)
    monkeypatch.setattr("workhorse.client.INTAKE_CHECK_EVERY", 3)
    for i in range(5):
        client.queue("work", f'{{"args": [{i}]}}')
        # The third enqueue finds three waiting: not yet full.
        assert intake_size(storage) == (i + 1 if storage.dialect == "sqlite" else 0)
    client.queue("work", "{}")  # the sixth finds six: admits them all
    assert intake_size(storage) == 0
    assert ("work", "queued", 6) in client.counts()
