"""Private PostgreSQL clusters for fault tests: made with initdb as the postgres
user, started on a free port in a process group of their own, so that a test
can kill the server with every backend at once, or cut it off from a client."""

from __future__ import annotations

import glob
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg


def _postgres_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


POSTGRES = max(glob.glob("/usr/lib/postgresql/*/bin/postgres"), default=None)
PG_USER = _postgres_user()


def missing() -> list[str]:
    """What this machine lacks to run private clusters (nothing: an empty list)."""
    needs = {
        "PostgreSQL's server binaries": POSTGRES is not None,
        "the postgres system user": PG_USER is not None,
        "root": os.geteuid() == 0,
    }
    return [need for need, ok in needs.items() if not ok]


def as_postgres() -> dict[str, object]:
    """Popen arguments that run the child itself as the postgres user (no runuser
    in between: the server must be the process a kill reaps)."""
    assert PG_USER is not None
    return {"user": PG_USER.pw_uid, "group": PG_USER.pw_gid, "extra_groups": []}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def give_to_postgres(path: Path) -> None:
    """Make `path` (a directory) the postgres user's."""
    assert PG_USER is not None
    os.chown(path, PG_USER.pw_uid, PG_USER.pw_gid)


def initdb(datadir: Path, *, trust: tuple[str, ...] = ()) -> None:
    """A new cluster in `datadir`, trusting local connections and the networks
    in `trust` (CIDR)."""
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
            "--no-sync",  # its files are not under test
        ],
        check=True,
        capture_output=True,
        **as_postgres(),  # type: ignore[call-overload]
    )
    if trust:
        with (datadir / "pg_hba.conf").open("a") as hba:
            for network in trust:
                hba.write(f"host all all {network} trust\n")


class Server:
    """A running private server; `url` reaches it over 127.0.0.1."""

    def __init__(
        self,
        datadir: Path,
        *,
        log: Path,
        listen: str = "127.0.0.1",
        settings: dict[str, str] | None = None,
    ) -> None:
        assert POSTGRES is not None
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._log_path = log
        self._log = open(log, "ab")  # noqa: SIM115
        options = {
            "listen_addresses": listen,
            "unix_socket_directories": "",
            "shared_buffers": "32MB",
            "max_connections": "60",
            **(settings or {}),
        }
        argv = [POSTGRES, "-D", str(datadir), "-p", str(self.port)]
        for name, value in options.items():
            argv += ["-c", f"{name}={value}"]
        self._proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **as_postgres(),  # type: ignore[call-overload]
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
