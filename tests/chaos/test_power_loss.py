"""Simulated power loss on SQLite: the database lives on a FUSE filesystem that
forgets every write not yet fsynced when told to (`lazyfs`). A process queues
tasks, posts messages (alone and in batches), consumes and deletes them, and runs
tasks; it is killed with -9, the unsynced writes are dropped, and what is left on
disk must hold every task and message it was told were stored, every task it saw
complete still complete, and none of the messages it was told were deleted.

The same harness with `synchronous=NORMAL` must lose acknowledged writes: the
control that shows the test can see a loss at all.
"""

from __future__ import annotations

import os
import select
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.chaos.lazyfs import lazy_mount
from workhorse.client import Client
from workhorse.domain.task import TaskStatus
from workhorse.errors import NotFound
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

if not (os.path.exists("/dev/fuse") and shutil.which("fusermount3")):
    _WHY = "needs /dev/fuse and fusermount3 (`make install` installs fuse3 as root)"
    if os.environ.get("CI"):
        pytest.fail(_WHY, pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

CYCLES = 3
# Acknowledgements of each kind to wait for before a cut.
TASKS, POSTS, DELETES = 150, 150, 40

WORKLOAD = """
import itertools
import sys
import threading

import workhorse
from workhorse.worker.worker import Worker, WorkerConfig

app = workhorse.App()
queue = app.queues["orders"]
out = threading.Lock()


@app.task
def noop(i):
    return i


def say(kind, ident):
    with out:
        sys.stdout.write(f"{kind} {ident}\\n")
        sys.stdout.flush()


def enqueue():
    for i in itertools.count():
        say("task", noop.queue(i).id)


def post(thread):
    for i in itertools.count():
        if i % 4 == 0:
            ids = queue.post([f"{thread}:{i}:{k}" for k in range(3)])
        else:
            ids = [queue.post(f"{thread}:{i}")]
        for message_id in ids:
            say("posted", message_id)


def consume():
    while True:
        for message in queue.reserve(5, wait=1):
            queue.delete(message)
            say("deleted", message.id)


def run():
    # Queue tasks, run them, and report each one seen complete (what a caller of
    # task.wait() is told).
    waiting = {noop.queue(i).id for i in range(60)}
    Worker(
        app.storage,
        registry=app.registry,
        config=WorkerConfig(concurrency=2, packages=False, push=False),
    ).start()
    while waiting:
        for task_id in list(waiting):
            if app.get_task(task_id).status == "complete":
                waiting.discard(task_id)
                say("completed", task_id)


if sys.argv[1] == "everything":
    Worker(
        app.storage,
        registry=app.registry,
        config=WorkerConfig(concurrency=2, packages=False, push=False),
    ).start()
    jobs = [enqueue, enqueue, consume, lambda: post(0), lambda: post(1)]
else:  # one writer alone: any write it acknowledges before its fsync is lost
    jobs = {
        "enqueue": [enqueue],
        "post": [lambda: post(0)],
        "consume": [consume],
        "run": [run],
    }[sys.argv[1]]
for job in jobs:
    threading.Thread(target=job, daemon=True).start()
threading.Event().wait()
"""


class Disk(NamedTuple):
    """Where the files really are, and where the lazy filesystem shows them."""

    backing: Path
    mountpoint: Path


def run_and_cut(
    disk: Disk,
    *,
    synchronous: str,
    workload: str,
    wanted: dict[str, int],
) -> dict[str, list[str]]:
    """Run the workload on the lazy filesystem until `wanted` acknowledgements of
    each kind came, kill it, cut the power; the acknowledgements, by kind."""
    with lazy_mount(disk.backing, disk.mountpoint) as mount:
        acks = run_workload(
            {
                "WORKHORSE_DATABASE_URL": f"sqlite:///{disk.mountpoint / 'workhorse.db'}",
                "WORKHORSE_SQLITE_SYNCHRONOUS": synchronous,
            },
            workload,
            wanted,
        )
        mount.cut_power()
    return acks


def run_workload(
    env: dict[str, str], workload: str, wanted: dict[str, int]
) -> dict[str, list[str]]:
    """Run WORKLOAD (with `env` added to this environment) until `wanted`
    acknowledgements of each kind came, then kill it; the acknowledgements."""
    acks: dict[str, list[str]] = defaultdict(list)
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, workload],
        stdout=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            kind, ident = line.decode().split()
            acks[kind].append(ident)
            if all(len(acks[k]) >= n for k, n in wanted.items()):
                break
        else:
            pytest.fail(f"the workload ended early: {proc.wait()}")
    finally:
        proc.kill()
        proc.wait()
    # Lines already written before the kill were acknowledged too.
    with proc.stdout:
        fd = proc.stdout.fileno()
        while select.select([fd], [], [], 0)[0] and (rest := os.read(fd, 65536)):
            for line in rest.decode().splitlines():
                if line.count(" ") == 1:
                    kind, ident = line.split()
                    acks[kind].append(ident)
    return acks


def what_is_lost(disk: Disk, acks: dict[str, list[str]]) -> dict[str, list[str]]:
    """Acknowledged writes missing from the database on `disk` (read directly,
    after the cut), by kind: tasks queued, tasks seen complete and no longer so,
    posted messages not deleted, deleted messages back."""
    db = disk.backing / "workhorse.db"
    check = sqlite3.connect(db)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        survived = check.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'mq_intake'"
        ).fetchone()
    finally:
        check.close()
    if not survived:  # nothing of the workload, not even the schema
        return {k: list(v) for k, v in acks.items() if k != "deleted"}
    return lost_in(f"sqlite:///{db}", acks)


def lost_in(url: str, acks: dict[str, list[str]]) -> dict[str, list[str]]:
    """Acknowledged writes missing from the database at `url`, by kind (see
    `what_is_lost`)."""
    storage: Storage = open_storage(Settings(database_url=url))
    try:
        client, queue = Client(storage), MessageQueues(storage)

        def status(task_id: str) -> TaskStatus | None:
            try:
                return client.get(task_id).status
            except NotFound:
                return None

        def stored(message_id: str) -> bool:
            try:
                queue.get_message("orders", message_id)
            except NotFound:
                return False
            return True

        deleted = set(acks.get("deleted", []))
        lost = {
            "task": [t for t in acks.get("task", []) if status(t) is None],
            "completed": [
                t for t in acks.get("completed", []) if status(t) != TaskStatus.COMPLETE
            ],
            "posted": [
                m for m in acks.get("posted", []) if m not in deleted and not stored(m)
            ],
            "deleted": [m for m in deleted if stored(m)],  # came back
        }
    finally:
        storage.close()
    return {kind: ids for kind, ids in lost.items() if ids}


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    """A migrated database with the queue and 200 messages in it, written
    durably through the lazy filesystem."""
    disk = Disk(tmp_path / "disk", tmp_path / "mnt")
    disk.backing.mkdir()
    with lazy_mount(disk.backing, disk.mountpoint):
        seed(f"sqlite:///{disk.mountpoint / 'workhorse.db'}")
    return disk


def seed(url: str) -> None:
    """Migrate the database at `url` and give it the queue with 200 messages."""
    storage = open_storage(Settings(database_url=url), migrate=True)
    try:
        queue = MessageQueues(storage)
        queue.create_queue("orders")
        for i in range(2):
            queue.post("orders", [f"first:{i}:{k}" for k in range(100)])
    finally:
        storage.close()


# Acknowledgements to wait for, by workload. Each alone writes fewer pages than an
# automatic checkpoint needs (1 000), so without fsync none of them reaches the disk.
ALONE = {
    "enqueue": {"task": 30},
    "post": {"posted": 40},
    "consume": {"deleted": 30},
    "run": {"completed": 20},
}


@pytest.mark.parametrize("workload", sorted(ALONE))
def test_a_power_cut_loses_nothing_acknowledged(disk: Disk, workload: str) -> None:
    """Each kind of acknowledged write on its own: any acknowledgement given
    before its fsync would be lost here (the control below shows it)."""
    acks = run_and_cut(
        disk,
        synchronous="FULL",
        workload=workload,
        wanted=ALONE[workload],
    )
    assert what_is_lost(disk, acks) == {}


@pytest.mark.parametrize("workload", sorted(ALONE))
def test_the_control_without_fsync_loses_every_acknowledged_write(
    disk: Disk, workload: str
) -> None:
    """synchronous=NORMAL acknowledges before the WAL reaches the disk: the
    harness must find every acknowledged write of the run lost (or, for deletes,
    undone)."""
    acks = run_and_cut(
        disk,
        synchronous="NORMAL",
        workload=workload,
        wanted=ALONE[workload],
    )
    lost = what_is_lost(disk, acks)
    assert {kind: len(ids) for kind, ids in lost.items()} == {
        kind: len(ids) for kind, ids in acks.items()
    }


def test_repeated_power_cuts_under_mixed_load_lose_nothing(disk: Disk) -> None:
    """Everything at once (queueing, posting alone and in batches, reserving and
    deleting, running tasks, whose claims and reservations commit without
    fsync), cut again and again, each run starting from what the last cut left."""
    for cycle in range(CYCLES):
        acks = run_and_cut(
            disk,
            synchronous="FULL",
            workload="everything",
            wanted={"task": TASKS, "posted": POSTS, "deleted": DELETES},
        )
        lost = what_is_lost(disk, acks)
        assert lost == {}, f"cycle {cycle}: acknowledged writes lost: {dict(lost)}"
