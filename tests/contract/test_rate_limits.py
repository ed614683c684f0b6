"""Per-code rate limits on task starts, shared by every runner, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.test_tasks import LEASE, NOW, claim, client_with_codes, queue
from workhorse.client import Client
from workhorse.storage import Storage


@pytest.fixture
def client(storage: Storage) -> Client:
    return client_with_codes(storage)


def limit(client: Client, code: str, rate: float | None, **options: Any) -> None:
    client.register_python(code, {"rate_limit": rate, **options})


def claim_rows(storage: Storage, now: float, runner: str = "r1") -> Any:
    args = {
        "runner_id": runner,
        "token": f"tok-{runner}-{now}",
        "cluster": "default",
        "project_id": "default",
        "codes": ["work", "other"],
        "packages": True,
        "limit": 100,
        "lease_seconds": LEASE,
        "now": now,
    }
    return storage.run(lambda tx: tx.tasks.claim_rows(**args))


def test_starts_take_tokens_and_the_bucket_refills(
    storage: Storage, client: Client
) -> None:
    limit(client, "work", 2.0)  # 2 a second; a full bucket holds 2
    queue(client, 10)
    assert claim_rows(storage, NOW).count == 2
    early = claim_rows(storage, NOW + 0.4)  # 0.8 of a token
    assert early.count == 0
    assert early.token_due == pytest.approx(0.1)
    assert claim_rows(storage, NOW + 0.5).count == 1
    assert claim_rows(storage, NOW + 0.5).count == 0
    assert claim_rows(storage, NOW + 60).count == 2  # never more than a full bucket


def test_runners_share_one_bucket(storage: Storage, client: Client) -> None:
    limit(client, "work", 3.0)
    queue(client, 10)
    assert claim_rows(storage, NOW, runner="r1").count == 3
    assert claim_rows(storage, NOW, runner="r2").count == 0
    assert claim_rows(storage, NOW + 1 / 3, runner="r2").count == 1


def test_slow_rates_start_one_at_a_time(storage: Storage, client: Client) -> None:
    limit(client, "work", 6 / 60)  # 6 a minute
    queue(client, 3)
    assert claim_rows(storage, NOW).count == 1
    assert claim_rows(storage, NOW + 5).token_due == pytest.approx(5)
    assert claim_rows(storage, NOW + 10).count == 1


def test_a_rate_limit_and_a_concurrency_cap_both_hold(
    storage: Storage, client: Client
) -> None:
    limit(client, "work", 10.0, max_concurrency=3)
    queue(client, 10)
    assert claim_rows(storage, NOW).count == 3  # the cap, with tokens to spare
    # The cap used no more tokens than tasks started: 7 remain for later.
    storage.run(
        lambda tx: tx.conn.execute(
            "UPDATE tasks SET status = 'complete' WHERE status = 'running'"
        )
    )
    assert claim_rows(storage, NOW).count == 3


def test_other_codes_are_not_held_back(storage: Storage, client: Client) -> None:
    limit(client, "work", 1.0)
    queue(client, 5)
    queue(client, 5, code="other")
    claimed = claim_rows(storage, NOW).tasks()
    assert sorted(t.code_name for t in claimed) == ["other"] * 5 + ["work"]


def test_lifting_the_limit_frees_the_code(storage: Storage, client: Client) -> None:
    limit(client, "work", 1.0)
    queue(client, 5)
    assert claim_rows(storage, NOW).count == 1
    limit(client, "work", None)
    assert claim_rows(storage, NOW).count == 4


def test_an_unrelated_claim_keeps_the_bucket(storage: Storage, client: Client) -> None:
    limit(client, "work", 1.0)
    queue(client, 1)
    assert claim(storage, now=NOW, codes=("other",)) == []
    assert claim_rows(storage, NOW).count == 1
