"""kill -9 of a process posting one message per call from eight threads at once
(whose posts share commits): every message it was told was posted is in the
queue once, each thread's in the order it posted them."""

from __future__ import annotations

from collections import defaultdict

import pytest

from tests.chaos.conftest import kill_after_acknowledged
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
ACKNOWLEDGED = 400
THREADS = 8

POSTER = """
import sys
import threading
import workhorse

queue = workhorse.App().queues["orders"]
out = threading.Lock()

def post(thread):
    for i in range(10**9):
        (message_id,) = queue.post(f"{thread}:{i}")
        with out:
            sys.stdout.write(f"{message_id} {thread}:{i}\\n")
            sys.stdout.flush()

threads = [threading.Thread(target=post, args=(t,)) for t in range(int(sys.argv[1]))]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_a_killed_poster_loses_no_acknowledged_message(
    settings: Settings, database_url: str
) -> None:
    acknowledged = kill_after_acknowledged(
        POSTER, [str(THREADS)], database_url, ACKNOWLEDGED
    )

    storage = open_storage(settings)
    try:
        queue = MessageQueues(storage)
        stored: list[tuple[str, str]] = []
        while batch := queue.reserve("orders", 100, delete=True):
            stored += [(m.id, m.body) for m in batch]
    finally:
        storage.close()
    ids = [message_id for message_id, _ in stored]
    assert len(ids) == len(set(ids))  # each once
    assert set(acknowledged) <= set(ids)
    # At most the posts in flight (one a thread) committed unacknowledged.
    assert len(stored) <= len(acknowledged) + THREADS
    by_thread: dict[str, list[int]] = defaultdict(list)
    for _, body in stored:
        thread, i = body.split(":")
        by_thread[thread].append(int(i))
    for numbers in by_thread.values():  # FIFO for each thread, nothing skipped
        assert numbers == list(range(len(numbers)))
