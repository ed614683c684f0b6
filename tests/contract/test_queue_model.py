"""A model-based test of message queues: random sequences of operations against a
plain in-memory model, on both backends, with the clock injected.

Hypothesis drives posts (single ones take SQLite's intake), reserves, deletes,
touches and releases with current and stale reservation ids, the clock moving on,
and the storage closed and opened again; messages reserved too often move to a
dead-letter queue. After every step both queues must agree with the model. A failure
shrinks to a short sequence of steps.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.contract.conftest import run_model
from workhorse.domain.message import NewMessage
from workhorse.errors import NotFound, StaleLease
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage

NOW = 1_800_000_000.0
MAX_RESERVATIONS = 3  # then the next reserve moves the message to the dead letters
_QUEUES = itertools.count()


@dataclass
class Model:
    """One message as the model knows it."""

    id: str
    order: int  # post order
    visible_at: float
    rid: str | None = None  # the current reservation id, valid until visible_at
    count: int = 0  # reservations and touches
    old_rids: list[str] = field(default_factory=list)

    def held(self, now: float) -> bool:
        return self.rid is not None and now < self.visible_at

    def available(self, now: float) -> bool:
        return now >= self.visible_at


class QueueMachine(RuleBasedStateMachine):
    url: str  # set on the subclass each test makes

    def __init__(self) -> None:
        super().__init__()
        self.storage = open_storage(Settings(database_url=self.url))
        self.mq = MessageQueues(self.storage)
        self.queue = f"model-{next(_QUEUES)}"
        self.dead = f"{self.queue}-dead"
        self.mq.create_queue(
            self.queue,
            {
                "dead_letter": {
                    "queue_name": self.dead,
                    "max_reservations": MAX_RESERVATIONS,
                }
            },
            now=NOW,
        )
        self.dead_letters: dict[str, int] = {}  # id -> reserved count, as moved
        self.now = NOW
        self.posted = itertools.count()
        self.messages: dict[str, Model] = {}
        self.deleted: set[str] = set()

    def teardown(self) -> None:
        self.storage.close()

    # -- operations ---------------------------------------------------------------

    @initialize(delays=st.lists(st.sampled_from([0, 0, 5, 20]), min_size=2, max_size=6))
    def start_with_a_backlog(self, delays: list[int]) -> None:
        """Messages posted one by one, some delayed: later steps find a mix."""
        for delay in delays:
            self.post(1, delay)

    @rule(
        count=st.integers(1, 3),
        delay=st.sampled_from([0, 0, 5, 20]),
    )
    def post(self, count: int, delay: int) -> None:
        bodies = [
            NewMessage(f"m{next(self.posted)}", delay=delay) for _ in range(count)
        ]
        ids = self.mq.post(self.queue, bodies, now=self.now)
        for message_id in ids:
            self.messages[message_id] = Model(
                message_id, len(self.messages) + len(self.deleted), self.now + delay
            )

    @rule(n=st.integers(1, 4), timeout=st.sampled_from([2, 10, 30]))
    def reserve(self, n: int, timeout: int) -> None:
        ready = [m for m in self.messages.values() if m.available(self.now)]
        got = self.mq.reserve(self.queue, n, timeout=timeout, now=self.now)
        # Messages reserved MAX_RESERVATIONS times already go to the dead letters
        # instead, as the reserve comes to them; those it did not come to stay.
        for model in [m for m in ready if m.count >= MAX_RESERVATIONS]:
            try:
                moved = self.mq.get_message(self.dead, model.id, now=self.now)
            except NotFound:
                continue
            assert moved.reserved_count == model.count
            self.dead_letters[model.id] = model.count
            del self.messages[model.id]
        available = [m for m in ready if m.count < MAX_RESERVATIONS]
        assert len(got) == min(n, len(available))
        ids = [m.id for m in got]
        assert len(set(ids)) == len(ids)
        assert set(ids) <= {m.id for m in available}, (
            "reserved a held or delayed message"
        )
        # Messages reserved before (released or timed out) come first; messages never
        # reserved come in post order, earliest first.
        fresh = sorted((m for m in available if m.count == 0), key=lambda m: m.order)
        again = [m for m in available if m.count > 0]
        got_fresh = [i for i in ids if self.messages[i].count == 0]
        got_again = [i for i in ids if self.messages[i].count > 0]
        assert ids == got_again + got_fresh, (
            "a fresh message came before a returning one"
        )
        if got_fresh:
            assert len(got_again) == len(again), "a returning message was passed over"
            assert got_fresh == [m.id for m in fresh[: len(got_fresh)]], "FIFO broken"
        for message in got:
            model = self.messages[message.id]
            assert message.reserved_count == model.count + 1
            assert message.reservation_id
            if model.rid is not None:
                model.old_rids.append(model.rid)
            model.rid = message.reservation_id
            model.count += 1
            model.visible_at = self.now + timeout

    def _held(self) -> list[Model]:
        return sorted(
            (m for m in self.messages.values() if m.held(self.now)),
            key=lambda m: m.order,
        )

    @precondition(lambda self: self._held())
    @rule(data=st.data())
    def delete_held(self, data: st.DataObject) -> None:
        model = data.draw(st.sampled_from(self._held()))
        self.mq.delete(self.queue, model.id, model.rid, now=self.now)
        del self.messages[model.id]
        self.deleted.add(model.id)

    @precondition(lambda self: self._held())
    @rule(data=st.data(), timeout=st.sampled_from([2, 30]))
    def touch_held(self, data: st.DataObject, timeout: int) -> None:
        model = data.draw(st.sampled_from(self._held()))
        assert model.rid is not None
        new = self.mq.touch(
            self.queue, model.id, model.rid, timeout=timeout, now=self.now
        )
        assert new != model.rid
        model.old_rids.append(model.rid)
        model.rid, model.visible_at = new, self.now + timeout
        model.count += 1

    @precondition(lambda self: self._held())
    @rule(data=st.data(), delay=st.sampled_from([0, 0, 3]))
    def release_held(self, data: st.DataObject, delay: int) -> None:
        model = data.draw(st.sampled_from(self._held()))
        assert model.rid is not None
        self.mq.release(self.queue, model.id, model.rid, delay=delay, now=self.now)
        model.old_rids.append(model.rid)
        model.rid, model.visible_at = None, self.now + delay

    def _with_dead_rids(self) -> list[Model]:
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.old_rids or (m.rid is not None and not m.held(self.now))
            ),
            key=lambda m: m.order,
        )

    @precondition(lambda self: self._with_dead_rids())
    @rule(data=st.data(), action=st.sampled_from(["delete", "touch", "release"]))
    def stale_reservation_is_refused(self, data: st.DataObject, action: str) -> None:
        """An old reservation id, or the last one after it ran out, changes nothing."""
        model = data.draw(st.sampled_from(self._with_dead_rids()))
        dead = list(model.old_rids)
        if model.rid is not None and not model.held(self.now):
            dead.append(model.rid)
        rid = data.draw(st.sampled_from(dead))
        call = {
            "delete": lambda: self.mq.delete(self.queue, model.id, rid, now=self.now),
            "touch": lambda: self.mq.touch(self.queue, model.id, rid, now=self.now),
            "release": lambda: self.mq.release(self.queue, model.id, rid, now=self.now),
        }[action]
        with pytest.raises(StaleLease):
            call()

    @precondition(lambda self: self.deleted)
    @rule(data=st.data())
    def deleted_messages_stay_deleted(self, data: st.DataObject) -> None:
        message_id = data.draw(st.sampled_from(sorted(self.deleted)))
        with pytest.raises(NotFound):
            self.mq.get_message(self.queue, message_id, now=self.now)

    @rule(seconds=st.sampled_from([0.5, 1, 3, 11, 31]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def restart(self) -> None:
        """Close every connection and open the database again."""
        self.storage.close()
        self.storage = open_storage(Settings(database_url=self.url))
        self.mq = MessageQueues(self.storage)

    # -- after every step -------------------------------------------------------------

    @invariant()
    def size_counts_every_live_message(self) -> None:
        info = self.mq.get_queue(self.queue, now=self.now)
        assert info.size == len(self.messages)
        if self.dead_letters:
            dead = self.mq.get_queue(self.dead, now=self.now)
            assert dead.size == len(self.dead_letters)

    @invariant()
    def every_live_message_reads_back(self) -> None:
        for model in self.messages.values():
            got = self.mq.get_message(self.queue, model.id, now=self.now)
            assert got.reserved_count == model.count


@pytest.mark.slow
def test_queues_behave_like_the_model(database_url: str) -> None:
    run_model(QueueMachine, database_url, examples=100)
