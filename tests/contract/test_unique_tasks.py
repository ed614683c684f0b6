"""Unique tasks: one queued or running task per code and key, on both backends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.contract.test_tasks import claim, client_with_codes, finish
from workhorse.client import Client
from workhorse.domain.task import MAX_UNIQUE_KEY_LENGTH, TaskOptions, TaskStatus
from workhorse.errors import InvalidInput
from workhorse.storage import Storage


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


def queue_keyed(
    client: Client,
    key: str | None,
    payload: str = "{}",
    code: str = "work",
    **opts: object,
) -> tuple[str, bool]:
    """Queue one task with `key`: (the id answered, whether it was a duplicate)."""
    (task,), (task_id,) = client.queue_many_as(
        code,
        [payload],
        TaskOptions(unique_key=key, **opts),  # type: ignore[arg-type]
    )
    return task_id, task_id != task.id


def stored(client: Client) -> list[tuple[str, str | None, TaskStatus]]:
    """Every task of the project, oldest first: (code, key, status)."""
    client.admit()
    rows = client.list(limit=1000)
    return [(t.code_name, t.unique_key, t.status) for _, t in reversed(rows)]


def test_a_key_held_by_a_queued_task_stores_nothing(client: Client) -> None:
    first, dup = queue_keyed(client, "k")
    again, dup_again = queue_keyed(client, "k", payload='{"other": 1}')
    assert (dup, dup_again) == (False, True)
    assert again == first
    assert stored(client) == [("work", "k", TaskStatus.QUEUED)]
    assert client.get(first).payload == "{}"  # the first one's, untouched


def test_the_key_is_held_while_running_and_freed_at_the_end(
    storage: Storage, client: Client
) -> None:
    first, _ = queue_keyed(client, "k")
    (task,) = claim(storage)
    assert queue_keyed(client, "k") == (first, True)
    finish(storage, task.id, "tok")
    second, dup = queue_keyed(client, "k")
    assert (second != first, dup) == (True, False)
    assert [s for _, _, s in stored(client)] == [TaskStatus.COMPLETE, TaskStatus.QUEUED]


def test_a_task_waiting_for_its_retry_keeps_its_key(
    storage: Storage, client: Client
) -> None:
    first, _ = queue_keyed(client, "k", retries=2)
    (task,) = claim(storage)
    finish(storage, task.id, "tok", status=TaskStatus.ERROR, error="x", retry_delay=5)
    assert client.get(first).status == TaskStatus.QUEUED
    assert queue_keyed(client, "k") == (first, True)


@pytest.mark.parametrize("end", ["cancel", "error"])
def test_cancelled_and_failed_tasks_free_their_key(
    storage: Storage, client: Client, end: str
) -> None:
    first, _ = queue_keyed(client, "k")
    if end == "cancel":
        client.cancel(first)
    else:
        (task,) = claim(storage)
        finish(storage, task.id, "tok", status=TaskStatus.ERROR, error="boom")
    second, dup = queue_keyed(client, "k")
    assert (second != first, dup) == (True, False)


def test_keys_are_per_code_and_per_project(client: Client) -> None:
    a, _ = queue_keyed(client, "k")
    b, dup_b = queue_keyed(client, "k", code="other")
    theirs = client.with_project("p2")
    theirs.register_python("work", {})
    c, dup_c = queue_keyed(theirs, "k")
    assert len({a, b, c}) == 3
    assert (dup_b, dup_c) == (False, False)


def test_tasks_without_a_key_are_never_duplicates(client: Client) -> None:
    ids = [queue_keyed(client, None)[0] for _ in range(3)]
    assert len(set(ids)) == 3


def test_a_batch_stores_the_first_task_of_each_key_in_order(
    storage: Storage, client: Client
) -> None:
    keys = ["a", "b", "a", None, "c", "b", None]
    tasks, ids = client.queue_many_as(
        "work",
        [f'{{"i": {i}}}' for i in range(len(keys))],
        per_task=[TaskOptions(unique_key=k) for k in keys],
    )
    built = [t.id for t in tasks]
    assert ids == [built[0], built[1], built[0], built[3], built[4], built[1], built[6]]
    assert [t.id for t in claim(storage, 10)] == [
        built[0],
        built[1],
        built[3],
        built[4],
        built[6],
    ]


def test_a_batch_against_keys_already_held(client: Client) -> None:
    held, _ = queue_keyed(client, "a")
    tasks, ids = client.queue_many_as(
        "work", ["1", "2"], per_task=[TaskOptions(unique_key=k) for k in ("a", "b")]
    )
    assert ids[0] == held
    assert ids[1] == tasks[1].id


def test_a_code_unique_by_payload(client: Client) -> None:
    client.register_python("once", {"unique": True})
    a, _ = queue_keyed(client, None, payload='{"args": [1]}', code="once")
    b, dup_b = queue_keyed(client, None, payload='{"args": [1]}', code="once")
    c, dup_c = queue_keyed(client, None, payload='{"args": [2]}', code="once")
    d, dup_d = queue_keyed(client, "own", payload='{"args": [1]}', code="once")
    assert (b, dup_b) == (a, True)
    assert (c != a, dup_c) == (True, False)
    assert (d not in (a, c), dup_d) == (True, False)  # a key of its own wins
    # A batch of one shared option set keys each task by its own payload.
    _, ids = client.queue_many_as("once", ['{"args": [1]}', '{"args": [3]}'])
    assert ids[0] == a
    assert ids[1] not in (a, c, d)


def test_a_unique_insert_retried_after_its_commit_landed_is_not_its_own_duplicate(
    client: Client,
    lose_first_commit: Callable[[], list[int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tries = lose_first_commit()
    task_id, dup = queue_keyed(client, "k")
    monkeypatch.undo()
    assert tries == [2]
    assert dup is False
    assert stored(client) == [("work", "k", TaskStatus.QUEUED)]
    assert client.get(task_id).unique_key == "k"


def test_retry_copies_the_key(storage: Storage, client: Client) -> None:
    first, _ = queue_keyed(client, "k")
    client.cancel(first)
    copy = client.retry(first)
    assert client.get(copy).unique_key == "k"
    # With the key held again, another retry answers with the holder.
    assert client.retry(first) == copy


@pytest.mark.parametrize(
    "key",
    ["", "x" * (MAX_UNIQUE_KEY_LENGTH + 1), 42, "a\x00b"],
    ids=["empty", "long", "number", "nul"],
)
def test_bad_keys_are_refused_and_nothing_is_written(
    client: Client, key: object
) -> None:
    with pytest.raises(InvalidInput, match="unique_key must be"):
        queue_keyed(client, key)  # type: ignore[arg-type]
    assert stored(client) == []


PRODUCER = textwrap.dedent(
    """
    import json, random, sys
    from workhorse.client import Client
    from workhorse.domain.task import TaskOptions
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    url, keys, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    storage = open_storage(Settings(database_url=url))
    client = Client(storage)
    order = list(range(keys))
    random.Random(seed).shuffle(order)
    sys.stdin.readline()  # every producer is ready: go
    answers = {}
    for k in order:
        (task,), (task_id,) = client.queue_many_as(
            "work", ["{}"], TaskOptions(unique_key=f"k{k}")
        )
        answers[k] = [task_id, task_id == task.id]
    storage.close()
    print(json.dumps(answers))
    """
)


def test_racing_producers_store_one_task_per_key(
    client: Client, database_url: str, tmp_path: Path
) -> None:
    """Four processes queue the same 60 keys at once, each in its own order."""
    import json

    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    keys, producers = 60, 4
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), database_url, str(keys), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(producers)
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("\n")
        p.stdin.flush()
    answers = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        answers.append({int(k): v for k, v in json.loads(out).items()})
    rows = stored(client)
    assert sorted(k for _, k, _ in rows) == sorted(f"k{k}" for k in range(keys))
    for k in range(keys):
        ids = {a[k][0] for a in answers}
        created = [a[k][1] for a in answers]
        assert len(ids) == 1, f"key k{k} answered with {ids}"
        assert created.count(True) == 1, f"key k{k} created {created.count(True)} times"
