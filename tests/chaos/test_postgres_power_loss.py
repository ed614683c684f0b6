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

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from tests.chaos.lazyfs import lazy_mount
from tests.chaos.test_power_loss import lost_in, run_workload
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


POSTGRES = max(glob.glob("/usr/lib/postgresql/*/bin/postgres"), default=None)
PG_USER = _postgres_user()
_NEEDS = {
    "PostgreSQL's server binaries": POSTGRES is not None,
    "the postgres system user": PG_USER is not None,
    "/dev/fuse and fusermount3": os.path.exists("/dev/fuse")
    and shutil.which("fusermount3") is not None,
    "root, to serve the filesystem to the postgres user": os.geteuid() == 0,
}
if not all(_NEEDS.values()):
    _WHY = "needs " + ", ".join(need for need, ok in _NEEDS.items() if not ok)
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


def _as_postgres() -> dict[str, object]:
    """Popen arguments that run the child itself as the postgres user (no runuser
    in between: the server must be the process a kill reaps)."""
    assert PG_USER is not None
    return {"user": PG_USER.pw_uid, "group": PG_USER.pw_gid, "extra_groups": []}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A private PostgreSQL server on one data directory, in a process group of
    its own (so that a kill takes the postmaster and every backend at once)."""

    def __init__(self, datadir: Path, *, fsync: bool) -> None:
        assert POSTGRES is not None
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._log_path = datadir.parent.parent / "server.log"
        self._log = open(self._log_path, "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                POSTGRES,
                "-D",
                str(datadir),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                f"fsync={'on' if fsync else 'off'}",
                "-c",
                "synchronous_commit=on",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "max_connections=60",
                # No checkpoint during a run: recovery replays the WAL from the
                # last one, so every acknowledged commit rests on the WAL's fsync.
                "-c",
                "checkpoint_timeout=1h",
                "-c",
                "max_wal_size=4GB",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **_as_postgres(),  # type: ignore[call-overload]
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 120) -> None:
        """Until the server takes connections (crash recovery first, on a restart)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self._log.close()
                tail = self._log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"postgres exited with {self._proc.returncode}:\n{tail}"
                )
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.1)  # a readiness probe: the server announces nothing

    def kill(self) -> None:
        """The power goes: the postmaster and every backend die at once."""
        os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        self._log.close()

    def stop(self) -> None:
        """Fast shutdown: a checkpoint, then exit."""
        os.killpg(self._proc.pid, signal.SIGINT)
        self._proc.wait(timeout=60)
        self._log.close()


def _initdb(datadir: Path) -> None:
    assert POSTGRES is not None
    subprocess.run(
        [
            str(Path(POSTGRES).with_name("initdb")),
            "-D",
            str(datadir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",  # the backing directory is not under test
        ],
        check=True,
        capture_output=True,
        **_as_postgres(),  # type: ignore[call-overload]
    )


@pytest.fixture
def disk() -> Iterator[Disk]:
    """A cluster with Workhorse's schema, the queue and 200 messages in it, shut
    down cleanly through the lazy filesystem (so all of it is synced)."""
    assert PG_USER is not None
    root = Path(tempfile.mkdtemp(prefix="workhorse-pg-power-"))
    root.chmod(0o755)  # the postgres user must reach its data directory
    disk = Disk(root / "disk", root / "mnt")
    disk.backing.mkdir()
    os.chown(disk.backing, PG_USER.pw_uid, PG_USER.pw_gid)
    try:
        _initdb(disk.backing / "pgdata")
        with lazy_mount(disk.backing, disk.mountpoint, allow_other=True):
            server = Server(disk.mountpoint / "pgdata", fsync=True)
            try:
                storage = open_storage(Settings(database_url=server.url), migrate=True)
                try:
                    queue = MessageQueues(storage)
                    queue.create_queue("orders")
                    for i in range(2):
                        queue.post("orders", [f"first:{i}:{k}" for k in range(100)])
                finally:
                    storage.close()
            finally:
                server.stop()
        yield disk
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_and_cut(
    disk: Disk, *, fsync: bool, workload: str, wanted: dict[str, int]
) -> dict[str, list[str]]:
    """Run the workload against the cluster on the lazy filesystem until `wanted`
    acknowledgements of each kind came; kill it and the server, cut the power."""
    with lazy_mount(disk.backing, disk.mountpoint, allow_other=True) as mount:
        server = Server(disk.mountpoint / "pgdata", fsync=fsync)
        try:
            acks = run_workload(
                {"WORKHORSE_DATABASE_URL": server.url}, workload, wanted
            )
        finally:
            server.kill()
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
    server = Server(datadir, fsync=True)
    try:
        return lost_in(server.url, acks)
    finally:
        server.stop()


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
