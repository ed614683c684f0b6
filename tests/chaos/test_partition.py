"""A runner host cut off from PostgreSQL without a word, then healed.

The runner runs in a network namespace of its own, joined to the host by a veth
pair; a private PostgreSQL cluster listens on the host's end. Taking that end
down drops every packet both ways, silently, as a network partition does: no
reset, no error, just nothing coming back. While the runner is cut off, its
leases lapse and another runner rescues and completes its tasks; once the
network heals, the cut-off runner finds out by itself, its outcomes are refused
(its lease tokens are stale), and it goes back to work: no restart, no hang.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.chaos import pgcluster
from tests.chaos.conftest import assert_back_at_work, fenced, runs, wait_for
from workhorse import App, TaskStatus
from workhorse.domain.task import python_payload
from workhorse.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

_MISSING = pgcluster.missing()
if shutil.which("ip") is None:
    _MISSING.append("the ip command (iproute2)")
if _MISSING:
    _WHY = "needs " + ", ".join(_MISSING)
    if os.environ.get("CI"):
        pytest.fail(_WHY, pytrace=False)
    pytest.skip(_WHY, allow_module_level=True)

TASKS = 4  # one per thread of the runner that is cut off
# How long the network stays down. Long enough that TCP alone would take long to
# notice the heal: its retransmissions are ~13 s and ~26 s apart by then.
PARTITION_SECONDS = 30.0


@pytest.fixture
def database_url(cluster: pgcluster.Server) -> str:
    """The private cluster, migrated (the runners' database, for `spawn_runner`)."""
    from workhorse.storage import open_storage

    open_storage(Settings(database_url=cluster.url), migrate=True).close()
    return cluster.url


class Net(NamedTuple):
    """A namespace joined to the host by a veth pair."""

    namespace: str
    host_link: str
    host_ip: str


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def net() -> Iterator[Net]:
    tag = os.getpid() % 100_000
    subnet = f"10.213.{os.getpid() % 250}"
    found = Net(f"workhorse-{tag}", f"whh{tag}", f"{subnet}.1")
    peer = f"whn{tag}"
    ip("netns", "add", found.namespace)
    try:
        ip("link", "add", found.host_link, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", found.namespace)
        ip("addr", "add", f"{found.host_ip}/30", "dev", found.host_link)
        ip("link", "set", found.host_link, "up")
        ip("-n", found.namespace, "addr", "add", f"{subnet}.2/30", "dev", peer)
        ip("-n", found.namespace, "link", "set", peer, "up")
        ip("-n", found.namespace, "link", "set", "lo", "up")
        yield found
    finally:
        subprocess.run(["ip", "link", "del", found.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", found.namespace], capture_output=True)


@pytest.fixture
def cluster(net: Net) -> Iterator[pgcluster.Server]:
    """A private cluster listening on 127.0.0.1 and on the host's end of the pair."""
    root = Path(tempfile.mkdtemp(prefix="workhorse-partition-"))
    root.chmod(0o755)  # the postgres user must reach its data directory
    try:
        pgcluster.give_to_postgres(root)
        pgcluster.initdb(root / "pgdata", trust=(f"{net.host_ip}/24",))
        server = pgcluster.Server(
            root / "pgdata",
            log=root / "server.log",
            listen=f"127.0.0.1,{net.host_ip}",
        )
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_runner_cut_off_from_postgres_is_fenced_and_recovers_by_itself(
    net: Net,
    cluster: pgcluster.Server,
    spawn_runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = App(settings=Settings(database_url=cluster.url, lease_seconds=2))
    app.client.register_python("hold", {})
    ids = app.client.queue_many("hold", [python_payload([i], {}) for i in range(TASKS)])
    runs_file = tmp_path / "runs.txt"
    outside = {"WORKHORSE_DATABASE_URL": cluster.url}
    inside = {"WORKHORSE_DATABASE_URL": cluster.url.replace("127.0.0.1", net.host_ip)}

    cut_off = spawn_runner(
        verbose=True, env=inside, wrap=["ip", "netns", "exec", net.namespace]
    )
    wait_for(
        lambda: (
            {t for k, t, p in runs(runs_file) if k == "start" and p == cut_off.pid}
            == set(ids)
        ),
        60,
        "the first runner to start every task",
    )
    ip("link", "set", net.host_link, "down")
    cut_at = time.monotonic()
    try:
        rescuer = spawn_runner(env=outside)
        wait_for(
            lambda: all(app.get_task(t).status == TaskStatus.COMPLETE for t in ids),
            60,
            "the second runner to rescue and complete every task",
        )
        # The fault itself lasts this long; nothing is being waited for.
        time.sleep(max(0.0, PARTITION_SECONDS - (time.monotonic() - cut_at)))
    finally:
        ip("link", "set", net.host_link, "up")
    healed_at = time.monotonic()

    log = tmp_path / "runner-0.log"
    wait_for(lambda: fenced(log) >= TASKS, 60, "the cut-off runner to be fenced")
    fenced_after = time.monotonic() - healed_at
    for i, task_id in enumerate(ids):
        task = app.get_task(task_id)
        assert (task.status, task.result) == (TaskStatus.COMPLETE, i * 2)
        assert [a.status for a in app.client.attempts(task_id)] == ["lost", "complete"]

    # Back to work: with the other runner gone, it runs new tasks.
    assert_back_at_work(app, rescuer, cut_off, runs_file)
    with capsys.disabled():
        print(f"\n[partition] fenced {fenced_after:.1f} s after the heal")
    app.close()


# Inside the namespace: a warm pooled connection, then one statement once the
# test has cut the network; prints how it ended and after how long.
CUT_OFF_STATEMENT = """
import sys, time
from workhorse.errors import StorageUnavailable
from workhorse.settings import Settings
from workhorse.storage import open_storage

storage = open_storage(Settings(database_url=sys.argv[1]))
storage.run(lambda tx: tx.conn.fetch_one("SELECT 1"), write=False)
print("ready", flush=True)
sys.stdin.readline()
began = time.monotonic()
try:
    storage.run(lambda tx: tx.conn.fetch_one("SELECT 1"), write=False, retry_for=0)
    print("answered", flush=True)
except StorageUnavailable:
    print(f"unavailable {time.monotonic() - began:.1f}", flush=True)
"""


def test_a_statement_cut_off_fails_within_seconds(
    net: Net, cluster: pgcluster.Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a limit of its own, a statement whose packets vanish waits for the
    kernel to give up: about a quarter of an hour."""
    url = cluster.url.replace("127.0.0.1", net.host_ip)
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            net.namespace,
            sys.executable,
            "-c",
            CUT_OFF_STATEMENT,
            url,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        ip("link", "set", net.host_link, "down")
        try:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "the statement still hangs after 60 s"
            outcome = proc.stdout.readline().split()
        finally:
            ip("link", "set", net.host_link, "up")
    finally:
        proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
    assert outcome[0] == "unavailable"
    with capsys.disabled():
        print(f"\n[partition] a cut-off statement failed after {outcome[1]} s")
