"""A consumer frozen (SIGSTOP) while it holds messages, past their reservation:
another consumer gets them again (same ids, one more reservation each), deletes
some and holds the others; the frozen one, woken, finds every reservation it
held refused (403) or its message gone (404), for touch, release and delete
alike, and nothing it does changes the queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
HELD = 6
TIMEOUT = 1  # seconds a reservation holds

# Reserves HELD messages and reports them, then waits for a line on stdin (it is
# frozen meanwhile) and tries to touch, release or delete each with its old
# reservation, reporting how each was answered.
CONSUMER = textwrap.dedent(
    """
    import sys
    from workhorse.errors import NotFound, StaleLease
    from workhorse.queues import MessageQueues
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    url, held, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    mq = MessageQueues(open_storage(Settings(database_url=url)))
    batch = mq.reserve("work", held, timeout=timeout)
    print("held " + " ".join(m.id for m in batch), flush=True)
    sys.stdin.readline()
    for i, m in enumerate(batch):
        action = ("touch", "release", "delete")[i % 3]
        try:
            if action == "touch":
                mq.touch("work", m.id, m.reservation_id)
            elif action == "release":
                mq.release("work", m.id, m.reservation_id)
            else:
                mq.delete("work", m.id, m.reservation_id)
            print(action + " accepted " + m.id, flush=True)
        except StaleLease:
            print(action + " refused " + m.id, flush=True)
        except NotFound:
            print(action + " missing " + m.id, flush=True)
    """
)


def test_a_frozen_consumer_is_fenced(settings: Settings) -> None:
    url = settings.database_url
    storage = open_storage(settings, migrate=True)
    mq = MessageQueues(storage)
    mq.post("work", [f"m{i}" for i in range(HELD)])
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, url, str(HELD), str(TIMEOUT)],
        env={**os.environ},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert consumer.stdin is not None
    assert consumer.stdout is not None
    try:
        held = consumer.stdout.readline().split()[1:]
        assert len(held) == HELD
        consumer.send_signal(signal.SIGSTOP)
        try:
            # Once the reservations run out, the same messages come again.
            again = mq.reserve("work", HELD, timeout=30, wait=TIMEOUT + 5)
            while len(again) < HELD:
                again += mq.reserve("work", HELD - len(again), timeout=30, wait=5)
            assert [m.id for m in again] == held
            assert all(m.reserved_count == 2 for m in again)
            for m in again[::2]:
                mq.delete("work", m.id, m.reservation_id)
        finally:
            consumer.send_signal(signal.SIGCONT)
        consumer.stdin.write("go\n")
        consumer.stdin.flush()
        answers = [line.split() for line in consumer.stdout]
        assert consumer.wait(30) == 0
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
        consumer.stdin.close()
        consumer.stdout.close()
    assert [m for _action, _answer, m in answers] == held
    assert [answer for _action, answer, _m in answers] == ["missing", "refused"] * (
        HELD // 2
    )
    # The second consumer's reservations still hold; its deletes go through.
    for m in again[1::2]:
        mq.delete("work", m.id, m.reservation_id)
    assert mq.get_queue("work").size == 0
    storage.close()
