"""A consumer killed with SIGKILL in the middle of a batch loses nothing: once its
reservations run out, every message it had not deleted is delivered again, and
every message is deleted exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage

TOTAL = 300
BATCH = 10
KILL_AFTER_BATCHES = 7
TIMEOUT = 60

# Reserves batches of BATCH, deletes each message and reports it; in batch number
# KILL_AFTER_BATCHES it stops halfway and blocks until it is killed.
CONSUMER = textwrap.dedent(
    """
    import sys
    from workhorse.queues import MessageQueues
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    url, batch_size, kill_after, timeout = sys.argv[1], *map(int, sys.argv[2:])
    mq = MessageQueues(open_storage(Settings(database_url=url)))
    batches = 0
    while True:
        batch = mq.reserve("work", batch_size, timeout=timeout, wait=5)
        batches += 1
        for i, m in enumerate(batch):
            if batches == kill_after and i == len(batch) // 2:
                print("mid-batch " + " ".join(x.id for x in batch[i:]), flush=True)
                sys.stdin.readline()  # blocks: the test kills us here
            mq.delete("work", m.id, m.reservation_id)
            print("deleted " + m.id, flush=True)
    """
)


def test_a_killed_consumer_loses_nothing(settings: Settings) -> None:
    storage = open_storage(settings)
    try:
        mq = MessageQueues(storage)
        posted: list[str] = []
        for start in range(0, TOTAL, 100):
            posted.extend(mq.post("work", [f"m{i}" for i in range(start, start + 100)]))
        deleted_by_child: list[str] = []
        unfinished: list[str] = []
        with subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONSUMER,
                settings.database_url,
                str(BATCH),
                str(KILL_AFTER_BATCHES),
                str(TIMEOUT),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as child:
            try:
                assert child.stdout is not None
                for line in child.stdout:
                    kind, _, rest = line.strip().partition(" ")
                    if kind == "deleted":
                        deleted_by_child.append(rest)
                    elif kind == "mid-batch":
                        unfinished = rest.split()
                        break
            finally:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        assert len(deleted_by_child) == BATCH * (KILL_AFTER_BATCHES - 1) + BATCH // 2
        assert len(unfinished) == BATCH - BATCH // 2

        # Nothing comes back while the dead consumer's reservations still hold...
        held = set(unfinished)
        visible = {m.id for m in mq.peek("work", 100)}
        assert not held & visible
        # ...and after they run out, everything not deleted is delivered again.
        after_expiry = time.time() + TIMEOUT + 1
        redelivered: dict[str, int] = {}
        deleted_after: list[str] = []
        while batch := mq.reserve("work", 100, timeout=TIMEOUT, now=after_expiry):
            for m in batch:
                redelivered[m.id] = m.reserved_count
            deleted_after.extend(
                mq.delete_many(
                    "work", [(m.id, m.reservation_id) for m in batch], now=after_expiry
                )
            )
        assert {i: redelivered[i] for i in unfinished} == dict.fromkeys(unfinished, 2)
        assert not set(deleted_by_child) & set(
            deleted_after
        )  # no redelivery after a delete
        assert sorted(deleted_by_child + deleted_after) == sorted(
            posted
        )  # nothing lost, nothing twice
        assert mq.get_queue("work", now=after_expiry).size == 0
    finally:
        storage.close()
