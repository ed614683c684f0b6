"""PostgreSQL restarts mid-drain: acknowledged tasks survive, runners and producers resume.

Runs against a private throwaway cluster (initdb in a temporary directory) so that
restarting it disturbs nothing else.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.chaos.conftest import wait_for
from workhorse import App, StorageUnavailable, TaskStatus
from workhorse.domain.task import python_payload
from workhorse.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.postgres]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """A PostgreSQL cluster of our own, durable settings, on a free loopback port."""

    def __init__(self, root: Path) -> None:
        bindir = _pg_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found")
        self.bin = bindir
        self.data = root / "pgdata"
        self.port = _free_port()
        self.log = root / "pg.log"
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        subprocess.run(
            _as_postgres(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-w",
                    "-o",
                    opts,
                    *args,
                ]
            ),
            check=True,
            capture_output=True,
        )


@pytest.fixture
def private_pg() -> Iterator[PrivateCluster]:
    # Not under pytest's temporary tree: the server runs as `postgres`, which must
    # be able to reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="workhorse-pg-"))
    try:
        cluster = PrivateCluster(root)
    except (RuntimeError, subprocess.CalledProcessError, FileNotFoundError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a private PostgreSQL cluster in CI: {exc}")
        pytest.skip(f"cannot start a private PostgreSQL cluster: {exc}")
    cluster.ctl("start")
    yield cluster
    subprocess.run(
        _as_postgres(
            [
                str(cluster.bin / "pg_ctl"),
                "-D",
                str(cluster.data),
                "-m",
                "immediate",
                "stop",
            ]
        ),
        capture_output=True,
    )
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_database_restart_loses_no_acknowledged_task(
    private_pg: PrivateCluster, spawn_runner: Callable[..., subprocess.Popen[bytes]]
) -> None:
    url = private_pg.url
    app = App(
        settings=Settings(database_url=url, lease_seconds=2, producer_retry_seconds=30)
    )
    app.client.register_python("work", {})
    acknowledged = app.client.queue_many(
        "work", [python_payload([i], {}) for i in range(300)]
    )
    runners = [spawn_runner(env={"WORKHORSE_DATABASE_URL": url}) for _ in range(2)]
    stop_producing = threading.Event()
    failures: list[BaseException] = []

    def produce() -> None:
        i = 1000
        while not stop_producing.is_set():
            try:
                acknowledged.append(app.client.queue("work", python_payload([i], {})))
            except (
                StorageUnavailable
            ) as exc:  # past the retry budget: must not happen here
                failures.append(exc)
            i += 1

    def finished() -> int:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM tasks WHERE status NOT IN ('queued', 'running')"
            ).fetchone()
        return int(row[0]) if row else 0

    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(lambda: finished() >= 100, 60, "100 tasks finished")
    private_pg.ctl("restart", "-m", "fast")
    wait_for(lambda: finished() >= 200, 60, "progress after the restart")
    stop_producing.set()
    producer.join()
    assert not failures
    wait_for(
        lambda: finished() >= len(acknowledged), 120, "every acknowledged task finished"
    )
    rows = {t.id: t for _, t in app.client.list(limit=100_000)}
    assert set(acknowledged) <= set(rows)
    assert {rows[i].status for i in acknowledged} == {TaskStatus.COMPLETE}
    for task_id in acknowledged[:: max(1, len(acknowledged) // 50)]:
        assert [a.status for a in app.client.attempts(task_id)].count("complete") == 1
    assert all(r.poll() is None for r in runners), (
        "a runner died instead of reconnecting"
    )
    app.close()
