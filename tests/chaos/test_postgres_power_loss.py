"""Simulated power loss on PostgreSQL: a private cluster whose data directory lives
on the lazy filesystem (see `lazyfs`). The workloads of `test_power_loss` run
against it; the server and the workload are killed with -9, every write not yet
fsynced is dropped, and the server, started again, recovers from what is left.
Every acknowledged task and message must be there, every task seen complete still
complete, and no acknowledged delete undone. (Claims and reservations, which
Workhorse commits without waiting for the disk, may be undone.)

The control runs the same with `fsync=off`: PostgreSQL then acknowledges commits
it never syncs, and the harness must find every one of them lost.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.chaos import pgcluster
from tests.chaos.lazyfs import lazy_mount
from tests.chaos.test_power_loss import lost_in, run_workload, seed

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

_MISSING = pgcluster.missing()
if not (os.path.exists("/dev/fuse") and shutil.which("fusermount3")):
    _MISSING.append("/dev/fuse and fusermount3")
if _MISSING:
    _WHY = "needs " + ", ".join(_MISSING)
    if os.environ.get("CI"):
        pytest.fail(_WHY, pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

CYCLES = 2
# Acknowledgements of each kind to wait for before a cut.
MIXED = {"task": 60, "posted": 60, "deleted": 20}
ALONE = {
    "enqueue": {"task": 25},
    "post": {"posted": 25},
    "consume": {"deleted": 20},
    "run": {"completed": 15},
}


class Disk(NamedTuple):
    """Where the cluster's files really are, and where the lazy filesystem shows them."""

    backing: Path
    mountpoint: Path


def server(datadir: Path, *, fsync: bool) -> pgcluster.Server:
    """The cluster in `datadir`, started; no checkpoint during a run, so that
    recovery replays the WAL from the last one and every acknowledged commit
    rests on the WAL's fsync."""
    return pgcluster.Server(
        datadir,
        log=datadir.parent.parent / "server.log",
        settings={
            "fsync": "on" if fsync else "off",
            "synchronous_commit": "on",
            "checkpoint_timeout": "1h",
            "max_wal_size": "4GB",
        },
    )


@pytest.fixture
def disk() -> Iterator[Disk]:
    """A cluster with Workhorse's schema, the queue and 200 messages in it, shut
    down cleanly through the lazy filesystem (so all of it is synced)."""
    root = Path(tempfile.mkdtemp(prefix="workhorse-pg-power-"))
    root.chmod(0o755)  # the postgres user must reach its data directory
    disk = Disk(root / "disk", root / "mnt")
    disk.backing.mkdir()
    pgcluster.give_to_postgres(disk.backing)
    try:
        pgcluster.initdb(disk.backing / "pgdata")
        with lazy_mount(disk.backing, disk.mountpoint, allow_other=True):
            running = server(disk.mountpoint / "pgdata", fsync=True)
            try:
                seed(running.url)
            finally:
                running.stop()
        yield disk
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_and_cut(
    disk: Disk, *, fsync: bool, workload: str, wanted: dict[str, int]
) -> dict[str, list[str]]:
    """Run the workload against the cluster on the lazy filesystem until `wanted`
    acknowledgements of each kind came; kill it and the server, cut the power."""
    with lazy_mount(disk.backing, disk.mountpoint, allow_other=True) as mount:
        running = server(disk.mountpoint / "pgdata", fsync=fsync)
        try:
            acks = run_workload(
                {"WORKHORSE_DATABASE_URL": running.url}, workload, wanted
            )
        finally:
            running.kill()
        mount.cut_power()
    return acks


def what_is_lost(disk: Disk, acks: dict[str, list[str]]) -> dict[str, list[str]]:
    """Start the server on what the cut left (crash recovery), and find the
    acknowledged writes missing from it (see `test_power_loss.what_is_lost`)."""
    datadir = disk.backing / "pgdata"
    pidfile = datadir / "postmaster.pid"
    if pidfile.exists() and pidfile.stat().st_size == 0:
        # PostgreSQL writes its lock file without fsync: a cut can leave it empty,
        # and the server then refuses to start until an operator removes it.
        pidfile.unlink()
    running = server(datadir, fsync=True)
    try:
        return lost_in(running.url, acks)
    finally:
        running.stop()


@pytest.mark.parametrize("workload", sorted(ALONE))
def test_a_power_cut_loses_nothing_acknowledged(disk: Disk, workload: str) -> None:
    acks = run_and_cut(disk, fsync=True, workload=workload, wanted=ALONE[workload])
    assert what_is_lost(disk, acks) == {}


@pytest.mark.parametrize("workload", sorted(ALONE))
def test_the_control_without_fsync_loses_every_acknowledged_write(
    disk: Disk, workload: str
) -> None:
    """fsync=off acknowledges commits that never reach the disk: every one of the
    run's acknowledged writes must be found lost (deletes: undone)."""
    acks = run_and_cut(disk, fsync=False, workload=workload, wanted=ALONE[workload])
    lost = what_is_lost(disk, acks)
    assert {kind: len(ids) for kind, ids in lost.items()} == {
        kind: len(ids) for kind, ids in acks.items()
    }


def test_repeated_power_cuts_under_mixed_load_lose_nothing(disk: Disk) -> None:
    """Everything at once (queueing, posting alone and in batches, reserving and
    deleting, running tasks), cut again and again, each run starting from what
    the last cut left."""
    for cycle in range(CYCLES):
        acks = run_and_cut(disk, fsync=True, workload="everything", wanted=MIXED)
        lost = what_is_lost(disk, acks)
        assert lost == {}, f"cycle {cycle}: acknowledged writes lost: {dict(lost)}"
