"""A real `workhorse up` subprocess on a free port, with the Iron clients on it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN_URL, _pg_available

WORKHORSE = [str(Path(sys.executable).parent / "workhorse")]
START_TIMEOUT = 30.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(database_url: str, *args: str, cwd: Path) -> str:
    """Run a workhorse command to completion; its stdout."""
    done = subprocess.run(
        [*WORKHORSE, "--database-url", database_url, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Project:
    """A project and one of its tokens."""

    id: str
    token: str


def create_project(database_url: str, name: str, cwd: Path) -> Project:
    """`workhorse project create NAME`, parsed."""
    out = run_cli(database_url, "project", "create", name, cwd=cwd)
    project_id = re.search(r"project_id:\s*(\S+)", out)
    token = re.search(r"token:\s*(\S+)", out)
    assert project_id, out
    assert token, out
    return Project(project_id.group(1), token.group(1))


class Server:
    """`workhorse up` in a subprocess; always stopped by the fixture that starts it."""

    def __init__(
        self, database_url: str, workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.env = {**os.environ, "WORKHORSE_DATABASE_URL": database_url, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def start(self) -> None:
        """Start and wait until the API answers."""
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *WORKHORSE,
                "up",
                "--port",
                str(self.port),
                "--concurrency",
                "4",
                "--shutdown-grace",
                "5",
            ],
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"workhorse up exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"workhorse up did not start:\n{self.log()}")

    def log(self) -> str:
        """Everything the server printed."""
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def _pg_database() -> Iterator[str]:
    problem = _pg_available()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but unreachable: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name = f"workhorse_acc_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh database for one module's server, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'workhorse.db'}"
        return
    yield from _pg_database()


@dataclass
class Running:
    """A started server with two projects."""

    server: Server
    project: Project
    other: Project


@pytest.fixture(scope="module")
def running(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """`workhorse up` on the module's database, with two projects."""
    workdir = tmp_path_factory.mktemp("server")
    project = create_project(server_database, "acceptance", workdir)
    other = create_project(server_database, "someone else", workdir)
    server = Server(server_database, workdir)
    server.start()
    try:
        yield Running(server, project, other)
    finally:
        server.stop()


@pytest.fixture
def iron_env(
    running: Running, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Running:
    """IRON_* variables for the clients, in an empty directory (no stray iron.json)."""
    monkeypatch.setenv("IRON_HOST", "127.0.0.1")
    monkeypatch.setenv("IRON_PORT", str(running.server.port))
    monkeypatch.setenv("IRON_PROTOCOL", "http")
    monkeypatch.setenv("IRON_TOKEN", running.project.token)
    monkeypatch.setenv("IRON_PROJECT_ID", running.project.id)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return running
