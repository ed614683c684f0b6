"""Queue upkeep any process may run (idempotent): alert checks and expiry."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime

from workhorse.domain.ids import new_id
from workhorse.domain.message import NewMessage, alert_fires
from workhorse.domain.queue import alerts_from_json
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

log = logging.getLogger(__name__)

EXPIRE_BATCH = 1000


def check_alerts(storage: Storage, *, now: float | None = None) -> int:
    """Evaluate every queue's alerts against its size; post the ones that fire.

    A compare-and-set on the stored alert state makes concurrent evaluators (one
    per runner) fire each crossing once. Returns how many alerts fired.
    """
    fired = 0
    for project_id, name, stored in storage.run(
        lambda tx: tx.messages.alert_queues(), write=False, retry_for=0
    ):

        def work(
            tx: Transaction, p: str = project_id, q: str = name, s: str = stored
        ) -> int:
            return _evaluate_alerts(tx, p, q, s, now)

        fired += storage.run(work, retry_for=0)
    return fired


def _evaluate_alerts(
    tx: Transaction, project_id: str, name: str, stored: str, now: float | None
) -> int:
    alerts = alerts_from_json(json.loads(stored))
    size = tx.messages.size(project_id, name, now=now)
    if all(a.last_size == size for a in alerts):
        return 0
    clock = tx.messages.db_now(now=now)  # snoozes follow the database clock
    updated, firing = [], []
    for a in alerts:
        fires = alert_fires(
            kind=a.type,
            direction=a.direction,
            trigger=a.trigger,
            snooze=a.snooze,
            before=a.last_size or 0,
            after=size,
            last_fired_at=a.last_fired_at,
            now=clock,
        )
        updated.append(
            replace(
                a, last_size=size, last_fired_at=clock if fires else a.last_fired_at
            )
        )
        if fires:
            firing.append(a)
    new_state = json.dumps([a.to_state() for a in updated], separators=(",", ":"))
    if not tx.messages.set_alerts_if(project_id, name, old=stored, new=new_state):
        return 0
    created = datetime.fromtimestamp(clock, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for a in firing:
        body = json.dumps(
            {
                "source_queue": name,
                "queue_size": size,
                "alert_id": a.id,
                "alert_type": a.type,
                "alert_direction": a.direction,
                "alert_trigger": a.trigger,
                "created_at": created,
            },
            separators=(",", ":"),
        )
        tx.messages.post(
            project_id,
            a.queue,
            [(new_id(), NewMessage(body))],
            queue_id=new_id(),
            now=now,
        )
        log.info(
            "alert %s on %s fired at size %d",
            a.id,
            name,
            size,
            extra={"event": "queue_alert_fired"},
        )
    return len(firing)


def expire_messages(
    storage: Storage, *, now: float | None = None, limit: int = EXPIRE_BATCH
) -> int:
    """Delete expired messages of every queue (up to `limit` per queue); how many."""
    total = 0
    for project_id, name in storage.run(
        lambda tx: tx.messages.queue_names(), write=False, retry_for=0
    ):

        def work(tx: Transaction, p: str = project_id, q: str = name) -> int:
            return tx.messages.expire(p, q, limit=limit, now=now)

        total += storage.run(work, retry_for=0)
    storage.run(lambda tx: tx.messages.expire_push_statuses(now=now), retry_for=0)
    return total
