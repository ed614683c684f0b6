"""Push delivery bookkeeping: claiming due messages for a round, per-subscriber
status, finishing or holding a message after a round, 202 acknowledgements, and
the error queue. The I/O of a round is the pusher's (`worker/pusher.py`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from workhorse.domain.ids import new_id
from workhorse.domain.message import Message, NewMessage
from workhorse.domain.push import (
    SubscriberStatus,
    error_message_body,
    failed,
    initial_statuses,
    is_done,
)
from workhorse.domain.queue import QueueInfo
from workhorse.errors import InvalidInput, NotFound
from workhorse.queues.refusal import QUEUE_NOT_FOUND, refusal
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

log = logging.getLogger(__name__)


class PushRounds:
    """Delivery rounds of one project's push messages."""

    def __init__(self, storage: Storage, *, project_id: str) -> None:
        self.storage = storage
        self.project_id = project_id

    def claim(
        self, queue: QueueInfo, *, n: int, timeout: int, now: float | None = None
    ) -> list[Message]:
        """Reserve up to `n` due messages of a push queue for one delivery round."""

        def work(tx: Transaction) -> list[Message]:
            tx.messages.promote(self.project_id, queue.name, now=now)
            got = tx.messages.reserve(
                self.project_id, queue.name, n=n, timeout=timeout, now=now
            )
            return [m for _, m in got]

        return self.storage.run(work, retry_for=0)

    def begin(
        self, queue: QueueInfo, message: Message, *, now: float | None = None
    ) -> list[SubscriberStatus]:
        """Delivery status of a message for this round, created on its first round.

        Only the queue's current subscribers are returned.
        """
        push = queue.settings.push
        if push is None:
            return []

        def work(tx: Transaction) -> list[SubscriberStatus]:
            known = {
                s.name: s
                for s in tx.messages.push_statuses(
                    self.project_id, queue.name, message.id
                )
            }
            fresh = initial_statuses(push.subscribers, push.retries)
            missing = [
                replace(s, position=s.position + len(known))
                for s in fresh
                if s.name not in known
            ]
            if missing:
                tx.messages.insert_push_statuses(
                    self.project_id,
                    queue.name,
                    message.id,
                    missing,
                    expires_at=tx.messages.db_now(now=now)
                    + queue.settings.message_expiration,
                )
            current = {s.name for s in push.subscribers}
            merged = [s for s in known.values() if s.name in current] + missing
            return sorted(merged, key=lambda s: s.position)

        return self.storage.run(work)

    def end(
        self,
        queue: QueueInfo,
        message: Message,
        statuses: Sequence[SubscriberStatus],
        *,
        now: float | None = None,
    ) -> bool:
        """Record a delivery round: delete the message when done (error queue for
        failures), else keep it reserved until `retries_delay`. False if the round's
        reservation no longer held (its results are dropped; it will be retried)."""
        push = queue.settings.push
        if push is None or message.reservation_id is None:
            return False
        rid = message.reservation_id

        def work(tx: Transaction) -> bool:
            if is_done(queue.settings.type, statuses):
                if not tx.messages.delete(
                    self.project_id, queue.name, message.id, rid, now=now
                ):
                    return False
                self._report_failures(tx, queue, message, statuses, now)
            elif not tx.messages.hold(
                self.project_id,
                queue.name,
                message.id,
                rid,
                seconds=push.retries_delay,
                now=now,
            ):
                return False
            tx.messages.update_push_statuses(message.id, statuses)
            return True

        return self.storage.run(work)

    def _report_failures(
        self,
        tx: Transaction,
        queue: QueueInfo,
        message: Message,
        statuses: Sequence[SubscriberStatus],
        now: float | None,
    ) -> None:
        push = queue.settings.push
        failures = failed(queue.settings.type, statuses)
        if not failures or push is None or not push.error_queue:
            return
        body = error_message_body(
            message.id, message.body, message.push_headers, failures
        )
        tx.messages.post(
            self.project_id,
            push.error_queue,
            [(new_id(), NewMessage(body))],
            queue_id=new_id(),
            now=now,
        )
        log.warning(
            "push message %s of %s failed for %d subscribers; posted to %s",
            message.id,
            queue.name,
            len(failures),
            push.error_queue,
            extra={"event": "push_failed"},
        )

    def ack(
        self,
        tx: Transaction,
        *,
        name: str,
        message_id: str,
        subscriber_name: str,
        reservation_id: str,
        now: float | None,
    ) -> None:
        queue = tx.messages.get_queue(self.project_id, name)
        if queue is None:
            raise NotFound(QUEUE_NOT_FOUND)
        if queue.settings.push is None:
            raise InvalidInput("subscriber_name is only for push queues")
        if not tx.messages.ack_push(
            self.project_id, name, message_id, subscriber_name, reservation_id, now=now
        ):
            raise refusal(
                tx,
                self.project_id,
                name,
                message_id,
                reservation_id=reservation_id,
                now=now,
            )
        current = {s.name for s in queue.settings.push.subscribers}
        statuses = [
            s
            for s in tx.messages.push_statuses(self.project_id, name, message_id)
            if s.name in current
        ]
        if is_done(queue.settings.type, statuses):
            message = tx.messages.get(self.project_id, name, message_id, now=now)
            if message is not None and tx.messages.delete(
                self.project_id, name, message_id, reservation_id, now=now
            ):
                self._report_failures(tx, queue, message, statuses, now)
