"""Message operations (IronMQ v3 message endpoints): post, reserve with long
polling, get, peek, delete, batch delete, touch, release and clear."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence

from workhorse.domain.ids import new_id, new_token
from workhorse.domain.message import (
    MAX_PER_CALL,
    Message,
    NewMessage,
    ReserveRequest,
    resolve_timeout,
    should_dead_letter,
    validate_count,
    validate_delay,
    validate_new_messages,
    validate_queue_name,
    validate_reserve,
    validate_timeout,
)
from workhorse.domain.push import SubscriberStatus, initial_statuses
from workhorse.domain.queue import QueueInfo
from workhorse.errors import InvalidInput, NotFound
from workhorse.queues.admin import QueueAdmin
from workhorse.queues.push import PushRounds
from workhorse.queues.refusal import MESSAGE_NOT_FOUND, QUEUE_NOT_FOUND, refusal
from workhorse.storage.base import Listener
from workhorse.storage.messages import (
    MESSAGE_INTAKE,
    NETWORKED,
    ONE_STATEMENT_POST,
    queue_key,
)
from workhorse.storage.stores import INTAKE_CHECK_EVERY, INTAKE_LIMIT, Transaction

log = logging.getLogger(__name__)

# A reserve that keeps finding messages to dead-letter stops refilling after this
# many rounds.
DEAD_LETTER_ROUNDS = 10
# With a stop event, a long poll checks it this often (a local event, no queries).
STOP_CHECK_SECONDS = 0.25
# A long poll re-checks the database at least this often even when nothing is
# announced.
MAX_IDLE_SECONDS = 5.0
# Single posts through SQLite's intake by this process, to look at its length now
# and then (see `MessageQueues._admit_long_intake`).
_INTAKE_POSTS = itertools.count(1)


def new_ids(count: int) -> list[str]:
    """`count` fresh message ids in `new_id`'s format: 8 hex digits of seconds, then
    16 hex digits, here a random 64-bit start counted up through the batch.

    Ids of one post sit side by side in the id index, so a batch changes a page or
    two of it, not one page per message (pages every commit must write and sync,
    and every delete touches again). Two posts collide only when their random
    starts fall within `count` of each other: less likely than with independent
    random ids. Ids name messages, they guard nothing (reservation ids do).
    """
    prefix = f"{int(time.time()) & 0xFFFFFFFF:08x}"
    start = int.from_bytes(os.urandom(8), "big")
    return [f"{prefix}{(start + i) & 0xFFFFFFFFFFFFFFFF:016x}" for i in range(count)]


class MessageQueues(QueueAdmin):
    """Every queue and message operation within one project.

    Every method taking `now` uses the database clock when it is None; tests pass
    a fixed time. Thread-safe: each call runs in its own transaction.
    """

    def with_project(self, project_id: str) -> MessageQueues:
        """The same operations, for another project."""
        return MessageQueues(
            self.storage, project_id=project_id, settings=self.settings
        )

    def post(
        self,
        name: str,
        messages: Sequence[NewMessage | str],
        *,
        now: float | None = None,
    ) -> list[str]:
        """Post 1-100 messages in one transaction; their ids, in order, once committed.

        The queue is created (as a pull queue with defaults) if it does not exist.
        """
        name = validate_queue_name(name)
        items = validate_new_messages(messages, self.settings.max_message_bytes)
        ids = new_ids(len(items))
        # Threads posting at once share commits; one alone commits at once.
        # One message on SQLite: one statement, if its queue is a pull queue that
        # exists (see `MessageStore.intake_post`); otherwise the full post below.
        if (
            len(items) == 1
            and self.storage.dialect in MESSAGE_INTAKE
            and self.storage.run_shared(
                lambda tx: tx.messages.intake_post(
                    self.project_id, name, ids[0], items[0], now=now
                ),
                single_statement=True,
            )
        ):
            if next(_INTAKE_POSTS) % INTAKE_CHECK_EVERY == 0:
                self._admit_long_intake()
            return ids
        queue_id = new_id()
        pairs = list(zip(ids, items, strict=True))
        # Every post counts itself in its queue's row: one row (see `shared_commits`).
        self.storage.run_shared(
            lambda tx: tx.messages.post(
                self.project_id, name, pairs, queue_id=queue_id, now=now, intake=False
            ),
            single_statement=self.storage.dialect in ONE_STATEMENT_POST,
            one_row=True,
        )
        return ids

    def _admit_long_intake(self) -> None:
        """With nobody consuming, the intake is admitted once INTAKE_LIMIT wait, so
        that no later operation has a long admission to make first."""
        if (
            self.storage.run(lambda tx: tx.messages.intake_length(), write=False)
            >= INTAKE_LIMIT
        ):
            self.storage.run(lambda tx: tx.messages.admit())

    def reserve(
        self,
        name: str,
        n: int = 1,
        *,
        timeout: float | None = None,
        wait: float = 0,
        delete: bool = False,
        now: float | None = None,
        stop: threading.Event | None = None,
    ) -> list[Message]:
        """Reserve up to `n` messages from the front of a pull queue.

        Args:
            timeout: seconds the reservation holds (None or 0: the queue's timeout).
            wait: long-poll up to this many seconds (at most 30) for a first
                message; returns as soon as one is available.
            delete: pop: delete the messages as they are handed out.
            stop: when set, a long poll gives up early with what it has (nothing).

        Raises:
            NotFound: the queue does not exist.
        """
        name = validate_queue_name(name)
        request = validate_reserve(n, timeout, wait)
        if request.wait <= 0:
            return self._reserve_once(name, request, delete, now)[0]
        # urgent: a waiting consumer should see another process's post at once
        listener = self.storage.listen([queue_key(self.project_id, name)], urgent=True)
        try:
            deadline = time.monotonic() + request.wait
            while True:
                got, due_in = self._reserve_once(name, request, delete, now)
                remaining = deadline - time.monotonic()
                if got or remaining <= 0 or (stop is not None and stop.is_set()):
                    return got
                pause = min(
                    remaining,
                    MAX_IDLE_SECONDS if due_in is None else max(due_in, 0.001),
                )
                self._wait(listener, pause, stop)
        finally:
            listener.close()

    @staticmethod
    def _wait(listener: Listener, seconds: float, stop: threading.Event | None) -> None:
        if stop is None:
            listener.wait(seconds)
            return
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or listener.wait(min(left, STOP_CHECK_SECONDS)):
                return

    def _reserve_once(
        self, name: str, request: ReserveRequest, delete: bool, now: float | None
    ) -> tuple[list[Message], float | None]:
        # The usual case is one statement (`reserve_ready`), which declines (returns
        # nothing) whenever the queue needs the full path below, or is empty. Where a
        # statement is a network round trip it runs on its own, before any
        # transaction; in-process it opens the full path's transaction, so an empty
        # queue still costs one write transaction.
        fast = not delete
        if fast and self.storage.dialect in NETWORKED:
            got = self.storage.run(
                lambda tx: tx.messages.reserve_ready(
                    self.project_id,
                    name,
                    n=request.n,
                    timeout=request.timeout,
                    now=now,
                ),
                single_statement=True,
            )
            if got:
                return [m for _, m in got], None
            fast = False

        def work(tx: Transaction) -> tuple[list[Message], float | None]:
            if fast:
                ready = tx.messages.reserve_ready(
                    self.project_id, name, n=request.n, timeout=request.timeout, now=now
                )
                if ready:
                    return [m for _, m in ready], None
            queue = tx.messages.get_queue(self.project_id, name)
            if queue is None:
                raise NotFound(QUEUE_NOT_FOUND)
            if queue.settings.is_push:
                raise InvalidInput(
                    "a push queue delivers to its subscribers; "
                    "it cannot be reserved from"
                )
            tx.messages.promote(self.project_id, name, now=now)
            timeout = resolve_timeout(request.timeout, queue.settings.message_timeout)
            got = self._reserve_with_dead_letters(tx, queue, request.n, timeout, now)
            if delete and got:
                tx.messages.delete_seqs([seq for seq, _ in got])
            due = None
            if not got and request.wait > 0:
                due = tx.messages.next_due(self.project_id, name, now=now)
            return [m for _, m in got], due

        # A reservation acknowledges nothing the client wrote, so it commits without
        # waiting for the disk (ADR 0007); a pop (delete=true) removes the message
        # and waits.
        return self.storage.run(work, durable=delete)

    def _reserve_with_dead_letters(
        self, tx: Transaction, queue: QueueInfo, n: int, timeout: int, now: float | None
    ) -> list[tuple[int, Message]]:
        dead_letter = queue.settings.dead_letter
        kept: list[tuple[int, Message]] = []
        for _ in range(DEAD_LETTER_ROUNDS):
            want = n - len(kept)
            got = tx.messages.reserve(
                self.project_id, queue.name, n=want, timeout=timeout, now=now
            )
            if dead_letter is None:
                return got
            # reserved_count now includes this reservation; the rule wants the count
            # before it.
            over = [
                seq
                for seq, m in got
                if should_dead_letter(
                    m.reserved_count - 1, dead_letter.max_reservations
                )
            ]
            kept.extend((seq, m) for seq, m in got if seq not in over)
            if over:
                _, expiration = tx.messages.upsert_for_post(
                    self.project_id,
                    dead_letter.queue_name,
                    new_id(),
                    len(over),
                    now=now,
                )
                tx.messages.dead_letter(
                    self.project_id,
                    over,
                    target=dead_letter.queue_name,
                    expiration=expiration,
                    now=now,
                )
                log.info(
                    "moved %d messages of %s to dead-letter queue %s",
                    len(over),
                    queue.name,
                    dead_letter.queue_name,
                    extra={"event": "messages_dead_lettered"},
                )
            if not over or len(got) < want:
                break
        return kept

    def get_message(
        self, name: str, message_id: str, *, now: float | None = None
    ) -> Message:
        """One message by id (reserved or not)."""
        name = validate_queue_name(name)
        found = self.storage.run(
            lambda tx: tx.messages.get(self.project_id, name, message_id, now=now),
            write=False,
        )
        if found is None:
            raise NotFound(self._missing(name))
        return found

    def peek(self, name: str, n: int = 1, *, now: float | None = None) -> list[Message]:
        """The next `n` messages a reserve would return; nothing is reserved."""
        name = validate_queue_name(name)
        n = validate_count(n)

        def work(tx: Transaction) -> list[Message]:
            if tx.messages.get_queue(self.project_id, name) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            return tx.messages.peek(self.project_id, name, n=n, now=now)

        return self.storage.run(work, write=False)

    def _missing(self, name: str) -> str:
        return MESSAGE_NOT_FOUND if self._queue_exists(name) else QUEUE_NOT_FOUND

    def _queue_exists(self, name: str) -> bool:
        queue = self.storage.run(
            lambda tx: tx.messages.get_queue(self.project_id, name), write=False
        )
        return queue is not None

    def delete(
        self,
        name: str,
        message_id: str,
        reservation_id: str | None = None,
        *,
        subscriber_name: str | None = None,
        now: float | None = None,
    ) -> None:
        """Delete a message: a reserved one needs its current reservation id.

        With `subscriber_name`, acknowledges a push delivery that subscriber
        answered with 202 (the message goes once every subscriber is done).

        Raises:
            StaleLease: the reservation expired or was replaced (HTTP 403).
            NotFound: no such message or queue.
        """
        name = validate_queue_name(name)
        if subscriber_name:
            if not reservation_id:
                raise InvalidInput(
                    "acknowledging a push delivery needs its reservation_id"
                )
            self.storage.run(
                lambda tx: PushRounds(self.storage, project_id=self.project_id).ack(
                    tx,
                    name=name,
                    message_id=message_id,
                    subscriber_name=subscriber_name,
                    reservation_id=reservation_id,
                    now=now,
                )
            )
            return

        deleted = self.storage.run(
            lambda tx: tx.messages.delete(
                self.project_id, name, message_id, reservation_id, now=now
            ),
            single_statement=True,
        )
        if not deleted:  # say why, from what is there now
            raise self.storage.run(
                lambda tx: refusal(
                    tx,
                    self.project_id,
                    name,
                    message_id,
                    reservation_id=reservation_id,
                    now=now,
                ),
                write=False,
            )

    def delete_many(
        self,
        name: str,
        items: Sequence[tuple[str, str | None]],
        *,
        now: float | None = None,
    ) -> list[str]:
        """Delete up to 100 (id, reservation id or None) pairs in one statement.

        Each pair follows the rule of `delete`; those that do not apply (stale,
        missing) are left alone. Returns the ids deleted.
        """
        name = validate_queue_name(name)
        if not 1 <= len(items) <= MAX_PER_CALL:
            raise InvalidInput(
                f"delete 1 to {MAX_PER_CALL} messages at a time, got {len(items)}"
            )
        for message_id, rid in items:
            if (
                not isinstance(message_id, str)
                or not message_id
                or (rid is not None and not isinstance(rid, str))
            ):
                raise InvalidInput(
                    "each item needs an id string and an optional reservation_id string"
                )

        deleted = self.storage.run(
            lambda tx: tx.messages.delete_many(self.project_id, name, items, now=now),
            single_statement=True,
        )
        if not deleted and not self._queue_exists(name):
            raise NotFound(QUEUE_NOT_FOUND)
        return deleted

    def touch(
        self,
        name: str,
        message_id: str,
        reservation_id: str,
        *,
        timeout: float | None = None,
        now: float | None = None,
    ) -> str:
        """Extend a live reservation; returns its new id (the old one stops working)."""
        name = validate_queue_name(name)
        requested = validate_timeout(timeout)
        if not reservation_id:
            raise InvalidInput("touch needs the message's reservation_id")
        new_rid = new_token()

        def work(tx: Transaction) -> str:
            queue = tx.messages.get_queue(self.project_id, name)
            if queue is None:
                raise NotFound(QUEUE_NOT_FOUND)
            seconds = resolve_timeout(requested, queue.settings.message_timeout)
            applied = tx.messages.touch(
                self.project_id,
                name,
                message_id,
                reservation_id,
                new_reservation_id=new_rid,
                timeout=seconds,
                now=now,
            )
            if applied is None:
                raise refusal(
                    tx,
                    self.project_id,
                    name,
                    message_id,
                    reservation_id=reservation_id,
                    now=now,
                )
            return new_rid

        return self.storage.run(work)

    def release(
        self,
        name: str,
        message_id: str,
        reservation_id: str,
        *,
        delay: float = 0,
        now: float | None = None,
    ) -> None:
        """Give a reservation back: the message returns to the front after `delay`."""
        name = validate_queue_name(name)
        seconds = validate_delay(delay)
        if not reservation_id:
            raise InvalidInput("release needs the message's reservation_id")

        def work(tx: Transaction) -> None:
            if not tx.messages.release(
                self.project_id,
                name,
                message_id,
                reservation_id,
                delay=seconds,
                now=now,
            ):
                raise refusal(
                    tx,
                    self.project_id,
                    name,
                    message_id,
                    reservation_id=reservation_id,
                    now=now,
                )

        self.storage.run(work)

    def clear(self, name: str) -> int:
        """Delete every message of a queue, reserved or not; how many."""
        name = validate_queue_name(name)

        def work(tx: Transaction) -> int:
            if tx.messages.get_queue(self.project_id, name) is None:
                raise NotFound(QUEUE_NOT_FOUND)
            return tx.messages.clear(self.project_id, name)

        return self.storage.run(work)

    def push_statuses(self, name: str, message_id: str) -> list[SubscriberStatus]:
        """Delivery status per subscriber of a push message (queued until tried)."""
        name = validate_queue_name(name)

        def work(tx: Transaction) -> list[SubscriberStatus]:
            queue = tx.messages.get_queue(self.project_id, name)
            if queue is None:
                raise NotFound(QUEUE_NOT_FOUND)
            if queue.settings.push is None:
                raise InvalidInput("only push queues have delivery status")
            statuses = tx.messages.push_statuses(self.project_id, name, message_id)
            if statuses:
                return statuses
            if tx.messages.get(self.project_id, name, message_id) is None:
                raise NotFound(MESSAGE_NOT_FOUND)
            return initial_statuses(
                queue.settings.push.subscribers, queue.settings.push.retries
            )

        return self.storage.run(work, write=False)
