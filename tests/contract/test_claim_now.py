"""PostgreSQL's one-statement claim for idle runners agrees with the full claim."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.test_tasks import LEASE, NOW, claim, client_with_codes, queue
from workhorse.client import Client
from workhorse.storage import Storage
from workhorse.storage.stores import ClaimedRows, Transaction


@pytest.fixture
def client(pg_storage: Storage) -> Client:
    return client_with_codes(pg_storage)


CLAIM_ARGS: dict[str, Any] = {
    "runner_id": "r1",
    "token": "tok",
    "cluster": "default",
    "project_id": "default",
    "codes": ["work", "other", "capped"],
    "packages": True,
    "limit": 10,
    "lease_seconds": LEASE,
    "now": NOW,
}


def claim_now(storage: Storage, limit: int = 10, **kw: Any) -> ClaimedRows:
    args = {**CLAIM_ARGS, "limit": limit, **kw}
    return storage.run(lambda tx: tx.tasks.claim_now(**args), single_statement=True)


def test_claim_now_leases_in_claim_order_and_decodes_rows_exactly(
    pg_storage: Storage, client: Client
) -> None:
    low = queue(client, 2, priority=0, label="low")
    high = queue(client, 1, priority=2, timeout=5)
    claimed = claim_now(pg_storage, 2)
    tasks = claimed.tasks()
    assert [t.id for t in tasks] == high + low[:1]
    assert claimed.capped is False
    for task in tasks:
        # What came back through JSON is what the table now holds.
        assert task == client.get(task.id)
        assert (task.attempt, task.lease_token, task.runner_id) == (1, "tok", "r1")
        assert task.lease_expires_at == NOW + LEASE
    assert [t.id for t in claim(pg_storage, 10)] == low[1:]


def test_claim_now_leaves_capped_and_paused_codes_and_says_so(
    pg_storage: Storage, client: Client
) -> None:
    client.register_python("capped", {"max_concurrency": 1})
    (plain,) = queue(client, 1)
    queue(client, 1, code="capped")
    queue(client, 1, code="other")
    client.set_paused("other", True)
    first = claim_now(pg_storage)
    assert [t.id for t in first.tasks()] == [plain]
    assert first.capped is True
    # The full claim takes the capped code's task; then nothing capped is due.
    assert len(claim(pg_storage, 10, codes=("capped",), token="t2")) == 1
    second = claim_now(pg_storage)
    assert second.count == 0
    assert second.capped is False


def test_claim_now_with_nothing_due_returns_nothing(
    pg_storage: Storage, client: Client
) -> None:
    queue(client, 1)
    later = claim_now(pg_storage, now=NOW - 60)
    assert (later.count, later.tasks(), later.capped) == (0, [], False)


def test_claim_now_relaxes_only_its_own_commit(
    pg_storage: Storage, client: Client
) -> None:
    # set_config(..., true) lasts until the statement's own transaction ends; were it
    # session-wide, every later commit on that pooled connection would skip the flush.
    queue(client, 1)
    with pg_storage.db.transaction(single=True) as conn:
        tx = Transaction(conn, pg_storage.db)
        assert tx.tasks.claim_now(**CLAIM_ARGS).count == 1
        row = conn.fetch_one("SHOW synchronous_commit")
    assert row is not None
    assert row["synchronous_commit"] == "on"
