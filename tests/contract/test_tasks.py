"""TaskStore conformance: the same behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from workhorse.client import Client
from workhorse.domain.task import MAX_LOST_ATTEMPTS, Outcome, TaskOptions, TaskStatus
from workhorse.storage import Storage

NOW = 1_800_000_000.0
LEASE = 30.0
# Queueing options unlike their defaults and one another: a value read from the
# wrong column shows.
DISTINCT_OPTIONS: dict[str, Any] = {
    "priority": 2,
    "delay": 7.5,
    "timeout": 123,
    "label": "lbl",
    "cluster": "gpu",
    "retries": 4,
    "retries_delay": 9,
    "backoff": True,
}


def client_with_codes(storage: Storage) -> Client:
    """A client whose project has the Python codes `work` and `other`."""
    c = Client(storage)
    c.register_python("work", {})
    c.register_python("other", {})
    return c


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


def queue(client: Client, n: int = 1, code: str = "work", **opts: Any) -> list[str]:
    """Queue tasks at the fixed test time."""
    ids: list[str] = []

    def work(tx):  # type: ignore[no-untyped-def]
        tasks = [
            client.build(tx, code, f'{{"args": [{i}]}}', TaskOptions(**opts))
            for i in range(n)
        ]
        tx.tasks.insert_many(tasks, now=NOW)
        ids.extend(t.id for t in tasks)

    client.storage.run(work)
    return ids


def claim(
    storage: Storage,
    limit: int = 10,
    *,
    now: float = NOW,
    codes: tuple[str, ...] = ("work", "other"),
    runner: str = "r1",
    token: str = "tok",  # noqa: S107 - a lease token, not a secret
    **kw: Any,
) -> list[Any]:
    args = {
        "runner_id": runner,
        "token": token,
        "cluster": "default",
        "project_id": "default",
        "codes": list(codes),
        "packages": True,
        "limit": limit,
        "lease_seconds": LEASE,
        "now": now,
        **kw,
    }
    return storage.run(lambda tx: tx.tasks.claim(**args))


def finish(
    storage: Storage,
    task_id: str,
    token: str,
    status: TaskStatus = TaskStatus.COMPLETE,
    **kw: Any,
):  # type: ignore[no-untyped-def]
    outcome = Outcome(task_id=task_id, lease_token=token, status=status, **kw)
    return storage.run(lambda tx: tx.tasks.finish_many([outcome], now=NOW + 1))


def test_claim_is_fifo_within_a_priority(storage: Storage, client: Client) -> None:
    ids = queue(client, 5)
    claimed = claim(storage, 5)
    assert [t.id for t in claimed] == ids


def test_higher_priority_is_claimed_first(storage: Storage, client: Client) -> None:
    low = queue(client, 2, priority=0)
    high = queue(client, 2, priority=2)
    mid = queue(client, 1, priority=1)
    assert [t.id for t in claim(storage, 5)] == high + mid + low


@pytest.mark.parametrize("count", [1, 3], ids=["one", "batch"])
def test_every_queued_field_is_stored_in_its_own_column(
    storage: Storage, client: Client, count: int
) -> None:
    # Distinct values per field: a column bound in the wrong place shows. A single
    # task and a batch take different statements on PostgreSQL.
    ids = queue(client, count, **DISTINCT_OPTIONS, schedule_id="sch", parent_id="par")
    assert len(ids) == count
    for i, task_id in enumerate(ids):
        task = client.get(task_id)
        assert (task.id, task.project_id, task.code_name, task.kind) == (
            task_id,
            "default",
            "work",
            "python",
        )
        assert (task.payload, task.priority, task.timeout, task.label) == (
            f'{{"args": [{i}]}}',
            2,
            123,
            "lbl",
        )
        assert (task.cluster, task.status) == ("gpu", TaskStatus.QUEUED)
        assert (task.retries, task.retries_delay, task.backoff) == (4, 9, True)
        assert (task.schedule_id, task.parent_id, task.code_revision) == (
            "sch",
            "par",
            None,
        )
        assert (task.created_at, task.run_at) == (NOW, NOW + 7.5)


@pytest.mark.parametrize("count", [1, 5], ids=["one", "batch"])
def test_tasks_retried_after_their_commit_landed_are_stored_once(
    client: Client,
    lose_first_commit: Callable[[], list[int]],
    monkeypatch: pytest.MonkeyPatch,
    count: int,
) -> None:
    # A single task takes a plain INSERT on PostgreSQL's first try, the idempotent
    # one on the retry.
    tries = lose_first_commit()
    ids = client.queue_many("work", [f"p{i}" for i in range(count)])
    monkeypatch.undo()
    assert tries == [2]
    stored = [t for _, t in client.list(limit=100)]
    assert sorted(t.id for t in stored) == sorted(ids)
    assert [t.payload for t in reversed(stored)] == [f"p{i}" for i in range(count)]


def test_a_claim_leases_and_counts_the_attempt(
    storage: Storage, client: Client
) -> None:
    queue(client)
    (task,) = claim(storage)
    assert task.status == TaskStatus.RUNNING
    assert task.attempt == 1
    assert task.lease_token == "tok"
    assert task.runner_id == "r1"
    assert task.lease_expires_at == NOW + LEASE


def test_a_task_is_claimed_once(storage: Storage, client: Client) -> None:
    queue(client, 3)
    first = claim(storage, 2, runner="a", token="t1")
    second = claim(storage, 10, runner="b", token="t2")
    assert len(first) == 2
    assert len(second) == 1
    assert not {t.id for t in first} & {t.id for t in second}


def test_delayed_tasks_wait_for_their_time(storage: Storage, client: Client) -> None:
    (later,) = queue(client, delay=60)
    assert claim(storage, now=NOW + 59) == []
    assert [t.id for t in claim(storage, now=NOW + 60)] == [later]


def test_runner_claims_only_codes_it_can_run(storage: Storage, client: Client) -> None:
    queue(client, 1, code="other")
    assert claim(storage, codes=["work"]) == []
    assert len(claim(storage, codes=["other"])) == 1


def test_runner_claims_only_its_cluster(storage: Storage, client: Client) -> None:
    queue(client, 1, cluster="gpu")
    assert claim(storage) == []
    assert len(claim(storage, cluster="gpu")) == 1


def test_max_concurrency_caps_running_tasks_across_claims(
    storage: Storage, client: Client
) -> None:
    client.register_python("capped", {"max_concurrency": 2})
    ids = queue(client, 5, code="capped")
    first = claim(storage, 10, codes=["capped"], runner="a", token="a")
    second = claim(storage, 10, codes=["capped"], runner="b", token="b")
    assert len(first) == 2
    assert second == []
    finish(storage, first[0].id, "a")
    third = claim(storage, 10, codes=["capped"], runner="b", token="b2")
    assert [t.id for t in third] == [ids[2]]


def test_paused_code_is_not_claimed_until_resumed(
    storage: Storage, client: Client
) -> None:
    queue(client, 2)
    client.set_paused("work", True)
    assert claim(storage) == []
    client.set_paused("work", False)
    assert len(claim(storage)) == 2


def test_finish_with_the_current_token_applies(
    storage: Storage, client: Client
) -> None:
    queue(client)
    (task,) = claim(storage)
    assert finish(storage, task.id, "tok", result='{"ok":1}') == 1
    stored = client.get(task.id)
    assert (stored.status, stored.result, stored.lease_token) == (
        TaskStatus.COMPLETE,
        '{"ok":1}',
        None,
    )
    (attempt,) = client.attempts(task.id)
    assert (attempt.attempt, attempt.status, attempt.runner_id) == (1, "complete", "r1")


def test_a_stale_token_cannot_finish(storage: Storage, client: Client) -> None:
    queue(client)
    (task,) = claim(storage)
    assert finish(storage, task.id, "someone-else") == 0
    stale_retry = {"status": TaskStatus.ERROR, "retry_delay": 0, "log": "late output"}
    assert finish(storage, task.id, "someone-else", **stale_retry) == 0
    assert client.get(task.id).status == TaskStatus.RUNNING
    assert client.attempts(task.id) == []
    assert client.log(task.id) == ""


def test_output_known_at_the_end_is_stored_with_the_attempt(
    storage: Storage, client: Client
) -> None:
    queue(client)
    (task,) = claim(storage)
    assert finish(storage, task.id, "tok", log="all done\n") == 1
    assert client.log(task.id) == "all done\n"


def test_two_runners_cannot_both_complete_one_attempt(
    storage: Storage, client: Client
) -> None:
    """A runner whose lease was rescued and re-claimed loses to the new holder."""
    queue(client)
    (task,) = claim(storage, runner="old", token="old")
    storage.run(
        lambda tx: tx.tasks.rescue_expired(max_lost=10, limit=10, now=NOW + LEASE + 1)
    )
    (again,) = claim(storage, runner="new", token="new", now=NOW + LEASE + 2)
    assert again.id == task.id
    assert finish(storage, task.id, "old") == 0
    assert finish(storage, task.id, "new") == 1
    assert client.get(task.id).status == TaskStatus.COMPLETE


def test_finishing_twice_applies_once(storage: Storage, client: Client) -> None:
    queue(client)
    (task,) = claim(storage)
    assert finish(storage, task.id, "tok") == 1
    assert finish(storage, task.id, "tok") == 0


def test_retry_sends_the_task_back_with_a_delay(
    storage: Storage, client: Client
) -> None:
    queue(client)
    (task,) = claim(storage)
    finish(
        storage, task.id, "tok", status=TaskStatus.ERROR, error="boom", retry_delay=10
    )
    stored = client.get(task.id)
    assert stored.status == TaskStatus.QUEUED
    assert stored.run_at == NOW + 1 + 10
    assert claim(storage, now=NOW + 10) == []
    (again,) = claim(storage, now=NOW + 11, token="t2")
    assert again.attempt == 2
    assert [a.status for a in client.attempts(task.id)] == ["error"]


def test_every_attempt_is_listed_once_in_order(
    storage: Storage, client: Client
) -> None:
    """Retried attempts, the final one, and one written by a rescue: none twice."""
    (retried, killed) = queue(client, 2)
    claim(storage, 2)
    finish(
        storage, retried, "tok", status=TaskStatus.ERROR, error="boom", retry_delay=0
    )
    (again,) = claim(storage, now=NOW + 2, token="t2")
    assert again.id == retried
    finish(storage, retried, "t2", error=None)
    attempts = client.attempts(retried)
    assert [(a.attempt, a.status, a.error) for a in attempts] == [
        (1, "error", "boom"),
        (2, "complete", None),
    ]
    assert attempts[1].runner_id == "r1"
    assert attempts[1].end_time == client.get(retried).end_time
    storage.run(
        lambda tx: tx.tasks.rescue_expired(max_lost=1, limit=10, now=NOW + LEASE + 1)
    )
    assert client.get(killed).status == TaskStatus.KILLED
    assert [(a.attempt, a.status) for a in client.attempts(killed)] == [(1, "lost")]


def test_heartbeat_extends_leases_and_reports_cancels(
    storage: Storage, client: Client
) -> None:
    a, b = queue(client, 2)
    claim(storage, 2)
    client.cancel(b)
    held = storage.run(
        lambda tx: tx.tasks.heartbeat(
            runner_id="r1", task_ids=[a, b], lease_seconds=LEASE, now=NOW + 20
        )
    )
    assert sorted(held) == sorted([(a, "tok", False), (b, "tok", True)])
    assert client.get(a).lease_expires_at == NOW + 20 + LEASE


def test_heartbeat_of_another_runner_extends_nothing(
    storage: Storage, client: Client
) -> None:
    (task_id,) = queue(client)
    claim(storage)
    assert (
        storage.run(
            lambda tx: tx.tasks.heartbeat(
                runner_id="r2", task_ids=[task_id], lease_seconds=LEASE, now=NOW
            )
        )
        == []
    )


def test_expired_leases_are_rescued_without_using_retries(
    storage: Storage, client: Client
) -> None:
    (task_id,) = queue(client, retries=0)
    claim(storage)
    assert (
        storage.run(
            lambda tx: tx.tasks.rescue_expired(
                max_lost=10, limit=10, now=NOW + LEASE - 1
            )
        )
        == []
    )
    rescued = storage.run(
        lambda tx: tx.tasks.rescue_expired(max_lost=10, limit=10, now=NOW + LEASE + 1)
    )
    assert [r.task_id for r in rescued] == [task_id]
    stored = client.get(task_id)
    assert (stored.status, stored.lost_count) == (TaskStatus.QUEUED, 1)
    assert [a.status for a in client.attempts(task_id)] == ["lost"]


def test_a_task_lost_too_often_is_killed(storage: Storage, client: Client) -> None:
    (task_id,) = queue(client)
    now = NOW
    for i in range(MAX_LOST_ATTEMPTS):
        claim(storage, now=now, token=f"t{i}")
        now += LEASE + 1
        storage.run(
            lambda tx, n=now: tx.tasks.rescue_expired(
                max_lost=MAX_LOST_ATTEMPTS, limit=10, now=n
            )
        )
    assert client.get(task_id).status == TaskStatus.KILLED


def test_cancel_of_a_queued_task_is_immediate_and_idempotent(
    client: Client, storage: Storage
) -> None:
    (task_id,) = queue(client)
    assert client.cancel(task_id).status == TaskStatus.CANCELLED
    assert client.cancel(task_id).status == TaskStatus.CANCELLED
    assert claim(storage) == []


def test_cancel_of_a_running_task_is_requested(
    client: Client, storage: Storage
) -> None:
    (task_id,) = queue(client)
    claim(storage)
    task = client.cancel(task_id)
    assert task.status == TaskStatus.RUNNING
    assert task.cancel_requested


def test_cancel_requested_on_a_dead_runner_ends_cancelled(
    client: Client, storage: Storage
) -> None:
    (task_id,) = queue(client)
    claim(storage)
    client.cancel(task_id)
    storage.run(
        lambda tx: tx.tasks.rescue_expired(max_lost=10, limit=10, now=NOW + LEASE + 1)
    )
    assert client.get(task_id).status == TaskStatus.CANCELLED


def test_release_hands_back_unstarted_tasks_as_never_claimed(
    client: Client, storage: Storage
) -> None:
    a, b = queue(client, 2)
    claim(storage, 2)
    storage.run(
        lambda tx: tx.tasks.release([(a, "tok", False), (b, "tok", True)], now=NOW + 1)
    )
    ta, tb = client.get(a), client.get(b)
    assert (ta.status, ta.attempt, ta.lost_count) == (TaskStatus.QUEUED, 0, 0)
    assert (tb.status, tb.attempt, tb.lost_count) == (TaskStatus.QUEUED, 1, 1)
    assert [x.status for x in client.attempts(b)] == ["interrupted"]
    assert [t.id for t in claim(storage, 2, token="t2")] == [a, b]


def test_unknown_code_is_refused_and_nothing_is_written(client: Client) -> None:
    from workhorse.errors import NotFound

    with pytest.raises(NotFound, match="unknown code"):
        client.queue("nope", "")
    assert client.list() == []


def test_bulk_queue_is_all_or_nothing(client: Client) -> None:
    from workhorse.errors import PayloadTooLarge

    too_big = "x" * (client.settings.max_payload_bytes + 1)
    with pytest.raises(PayloadTooLarge):
        client.queue_many("work", ["ok", too_big])
    assert client.list() == []


def test_list_is_newest_first_with_filters_and_cursor(client: Client) -> None:
    ids = queue(client, 3)
    other = queue(client, 1, code="other")
    rows = client.list(limit=10)
    assert [t.id for _, t in rows] == [*other, *reversed(ids)]
    assert [t.id for _, t in client.list(code_name="other")] == other
    first_page = client.list(limit=2)
    next_page = client.list(limit=10, before_seq=first_page[-1][0])
    assert [t.id for _, t in first_page + next_page] == [t.id for _, t in rows]


def test_progress_and_logs_are_kept_per_attempt(
    client: Client, storage: Storage
) -> None:
    (task_id,) = queue(client)
    claim(storage)
    assert storage.run(lambda tx: tx.tasks.set_progress(task_id, "tok", 40, "reading"))
    assert not storage.run(lambda tx: tx.tasks.set_progress(task_id, "stale", 50, None))
    storage.run(lambda tx: tx.tasks.append_log(task_id, 1, 0, "hello "))
    storage.run(lambda tx: tx.tasks.append_log(task_id, 1, 1, "world"))
    assert client.log(task_id) == "hello world"
    assert client.get(task_id).progress == 40


def test_prune_forgets_old_finished_tasks_only(
    client: Client, storage: Storage
) -> None:
    old, running = queue(client, 2)
    claimed = claim(storage, 1)
    finish(storage, claimed[0].id, "tok")
    claim(storage, 1, token="t2")
    assert storage.run(lambda tx: tx.tasks.prune(before=NOW + 2, limit=100)) == 1
    assert [t.id for _, t in client.list()] == [running]
    assert client.attempts(running) == []
    _ = old


def test_retry_of_a_finished_task_queues_a_copy(client: Client) -> None:
    (task_id,) = queue(client, label="x")
    client.cancel(task_id)
    new_id = client.retry(task_id)
    new = client.get(new_id)
    assert new_id != task_id
    assert (new.status, new.code_name, new.payload, new.label) == (
        TaskStatus.QUEUED,
        "work",
        '{"args": [0]}',
        "x",
    )


def test_retry_of_an_unfinished_task_is_refused(client: Client) -> None:
    from workhorse.errors import InvalidInput

    (task_id,) = queue(client)
    with pytest.raises(InvalidInput, match="only finished"):
        client.retry(task_id)


def test_another_projects_task_is_not_found(client: Client) -> None:
    from workhorse.errors import NotFound

    (task_id,) = queue(client)
    with pytest.raises(NotFound):
        client.with_project("other-project").get(task_id)


@pytest.mark.parametrize("count", [1, 3])
def test_queued_tasks_are_announced(
    storage: Storage, client: Client, count: int
) -> None:
    listener = storage.listen(["tasks:default"], urgent=True)
    # Listening starts with a wake-up (anything may have changed meanwhile).
    assert listener.wait(5.0)
    queue(client, count)
    assert listener.wait(5.0)
    listener.close()
