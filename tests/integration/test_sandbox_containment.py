"""Hostile code packages against the real sandbox: each must be contained and reported.

Every case runs as a real process tree in bubblewrap with small limits (64 MiB,
64 processes, 8 MiB of disk, short timeouts) so the corpus stays cheap on a
shared machine. After the tasks end, /proc must hold none of their processes,
no task cgroup may be left, and the runner must still run ordinary tasks.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workhorse import App, TaskStatus
from workhorse.app import TaskHandle
from workhorse.client import CodePackage
from workhorse.settings import Settings
from workhorse.worker.runners.sandbox import bwrap_launcher
from workhorse.worker.worker import Worker, WorkerConfig

WAIT = 60.0
# Sleep lengths that name our processes in /proc.
MARK = f"9{os.getpid() % 1000:03d}{time.monotonic_ns() % 1000:03d}"
SECRET = f"postgresql://owner:pw-{MARK}@127.0.0.1:5432/prod"
SMALL = {
    "memory": "64M",
    "processes": 64,
    "disk": "8M",
    "cpu": 2,
    "open_files": 64,
    "timeout": 3,
}


def _sandbox_problem() -> str | None:
    launcher, problem = bwrap_launcher(None, 65534)
    return None if launcher is not None else problem


@pytest.fixture(autouse=True)
def _needs_bwrap() -> None:
    problem = _sandbox_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox is required in CI: {problem}")
        pytest.skip(problem)


@dataclass
class Case:
    """One hostile package and what must become of it."""

    script: str
    status: TaskStatus
    error: str | None = None
    log_has: tuple[str, ...] = ()
    log_lacks: tuple[str, ...] = ()
    options: dict[str, object] = field(default_factory=dict)


CORPUS: dict[str, Case] = {
    "memory": Case(
        "exec python3 -c 'import time; x = bytearray(256 << 20); time.sleep(30)'\n",
        TaskStatus.KILLED,
        "killed: memory limit (64 MiB)",
    ),
    "fork-bomb": Case(
        f"bomb() {{ bomb | bomb & }}\nbomb\nsleep {MARK}1\n",
        TaskStatus.KILLED,
        "killed: process limit (64)",
    ),
    "fill-task-dir": Case(
        'i=0\nwhile head -c 1048576 /dev/zero > "$TASK_DIR/f$i"; do i=$((i+1)); done\n'
        f"echo full after $i\nsleep {MARK}2\n",
        TaskStatus.KILLED,
        "killed: disk limit (8 MiB): /task is full",
    ),
    "ignore-sigterm": Case(
        f"trap '' TERM\nsleep {MARK}3 &\nwait\nsleep {MARK}3\n",
        TaskStatus.TIMEOUT,
        "timed out after 3 s",
    ),
    "cpu-burn": Case(
        "exec python3 -c 'while True: pass'\n",
        TaskStatus.KILLED,
        "killed: CPU time limit (2 s)",
        options={"timeout": 30},  # 2 s of CPU may take longer on a busy machine
    ),
    "daemons": Case(
        f"setsid sh -c 'sleep {MARK}4 &' </dev/null >/dev/null 2>&1\n"
        f"( ( sleep {MARK}5 & ) & )\n"
        f"nohup sleep {MARK}6 >/dev/null 2>&1 &\n"
        "echo spawned\n",
        TaskStatus.COMPLETE,
        log_has=("spawned",),
    ),
    "write-outside": Case(
        "for p in /code/x /etc/x /usr/x /x /proc/sys/kernel/hostname"
        ' "$TASK_DIR/../x"; do\n'
        '  if echo pwned 2>/dev/null > "$p"; then echo "WROTE $p"\n'
        '  else echo "denied $p"; fi\n'
        "done\n"
        f"echo private > /tmp/workhorse-escape-{MARK} && echo tmp-ok\n",
        TaskStatus.COMPLETE,
        log_has=("denied /code/x", "denied /etc/x", "tmp-ok"),
        log_lacks=("WROTE",),
    ),
    "network-off": Case(
        "exec python3 - <<'EOF'\n"
        "import os, socket\n"
        "for port in (5432, int(os.environ['HOST_PORT'])):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
        "        print('CONNECTED', port)\n"
        "    except OSError as exc:\n"
        "        print('refused', port, type(exc).__name__)\n"
        "EOF\n",
        TaskStatus.COMPLETE,
        log_has=("refused 5432",),
        log_lacks=("CONNECTED",),
    ),
    "read-runner-env": Case(
        "env\ncat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'\n"
        "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '\n",
        TaskStatus.COMPLETE,
        log_has=("TASK_ID=",),
        log_lacks=(SECRET, "WORKHORSE_DATABASE_URL", "RUNNER_API_TOKEN"),
    ),
    "open-files": Case(
        "exec python3 -c 'fs = [open(\"/dev/null\") for _ in range(1000)]'\n",
        TaskStatus.ERROR,
        "exited with code 1",
        log_has=("Too many open files",),
    ),
}


def live_processes(needles: list[str]) -> list[str]:
    """Live (not zombie) processes whose command line contains any needle."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and any(n in cmdline for n in needles):
            found.append(f"{proc.name}: {cmdline}")
    return found


def task_cgroups(task_ids: list[str]) -> list[str]:
    """Task cgroup directories still present for these tasks."""
    left = []
    for parent in Path("/sys/fs/cgroup").glob("**/workhorse"):
        left += [d.name for d in parent.iterdir() if d.name.split("-")[0] in task_ids]
    return left


@pytest.fixture
def host_port() -> Iterator[int]:
    """A port the host listens on, to prove the task cannot reach it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield int(server.getsockname()[1])


@pytest.fixture
def hostile_app(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, host_port: int
) -> Iterator[App]:
    """An app whose runner has secrets in its environment."""
    monkeypatch.setenv("WORKHORSE_DATABASE_URL", SECRET)
    monkeypatch.setenv("RUNNER_API_TOKEN", f"token-{MARK}")
    monkeypatch.setenv("HOST_PORT", str(host_port))
    a = App(settings=dataclasses.replace(settings, sandbox="bwrap"))
    yield a
    a.close()


def upload(app: App, root: Path, name: str, script: str, **options: object) -> None:
    src = root / name
    src.mkdir()
    (src / "run.sh").write_text(script)
    limits: dict[str, Any] = {**SMALL, **options}
    app.client.upload_directory(
        src, CodePackage(name=name, command="sh run.sh", **limits)
    )


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_hostile_corpus_is_contained_and_reported(
    hostile_app: App,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
    host_port: int,
) -> None:
    app = hostile_app
    for name, case in CORPUS.items():
        env = {"HOST_PORT": str(host_port)} if name == "network-off" else None
        upload(app, tmp_path, name, case.script, env=env, **case.options)
    upload(app, tmp_path, "benign", "echo fine\n")
    worker = start_worker(app, concurrency=len(CORPUS) + 2)
    assert worker.process.launcher.name == "bwrap"
    handles = {name: app.queue(name) for name in CORPUS}
    problems = []
    for name, handle in handles.items():
        case = CORPUS[name]
        task = handle.wait(WAIT).task
        log = handle.log
        if task.status != case.status or (case.error and task.error != case.error):
            problems.append(f"{name}: {task.status} {task.error!r}\n{log[-500:]}")
        problems += [f"{name}: log lacks {s!r}" for s in case.log_has if s not in log]
        problems += [f"{name}: log has {s!r}" for s in case.log_lacks if s in log]
    assert problems == []
    task_ids = [h.id for h in handles.values()]
    wait_for(lambda: not live_processes([MARK, *task_ids]))
    assert task_cgroups(task_ids) == []
    for path in ("/etc/x", "/usr/x", "/x", f"/tmp/workhorse-escape-{MARK}"):
        assert not Path(path).exists(), path
    assert list((tmp_path / "cache").rglob("x")) == []
    # The runner still serves ordinary work.
    for benign in [app.queue("benign") for _ in range(3)]:
        assert benign.wait(WAIT).status == TaskStatus.COMPLETE
        assert benign.log == "fine\n"


def test_a_task_cannot_read_another_tasks_task_dir(
    hostile_app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    app = hostile_app
    secret = f"victim-secret-{MARK}"
    upload(
        app,
        tmp_path,
        "victim",
        f'echo {secret} > "$TASK_DIR/secret"\necho ready\nexec sleep {MARK}7\n',
        timeout=30,
    )
    upload(
        app,
        tmp_path,
        "thief",
        "grep -rs victim-secret /tmp /task /dev/shm /run /var/tmp 2>/dev/null\n"
        "cat /proc/[0-9]*/root/task/secret /tmp/workhorse-*/task/secret 2>&1\n"
        "echo searched\n",
        timeout=20,
    )
    start_worker(app)
    victim: TaskHandle = app.queue("victim")
    wait_for(lambda: "ready" in victim.log)
    thief = app.queue("thief").wait(WAIT)
    assert thief.status == TaskStatus.COMPLETE, thief.error
    assert "searched" in thief.log
    assert secret not in thief.log
    victim.cancel()
    assert victim.wait(WAIT).status == TaskStatus.CANCELLED
    wait_for(lambda: not live_processes([f"{MARK}7", victim.id]))


@pytest.mark.parametrize(
    "name", ["memory", "fork-bomb", "ignore-sigterm", "cpu-burn", "daemons"]
)
def test_without_the_sandbox_cgroups_still_contain_the_worst(
    settings: Settings, start_worker: Callable[..., Worker], tmp_path: Path, name: str
) -> None:
    plain = App(settings=dataclasses.replace(settings, sandbox="process"))
    try:
        worker = start_worker(plain)
        launcher = worker.process.launcher
        if "cgroup" not in launcher.describe():
            pytest.skip("no writable cgroups here: the fallback has rlimits only")
        case = CORPUS[name]
        upload(plain, tmp_path, name, case.script, **case.options)
        handle = plain.queue(name)
        task = handle.wait(WAIT).task
        assert task.status == case.status, handle.log
        if case.error:
            assert task.error == case.error
        assert handle.log.startswith("[workhorse] WARNING: not sandboxed")
        wait_for(lambda: not live_processes([MARK, handle.id]))
    finally:
        plain.close()


@pytest.mark.parametrize("name", ["ignore-sigterm", "daemons", "fill-task-dir"])
def test_without_cgroups_the_sandbox_still_ends_every_process(
    hostile_app: App, tmp_path: Path, name: str
) -> None:
    launcher, problem = bwrap_launcher(None, 65534)
    assert launcher is not None, problem
    worker = Worker(
        hostile_app.storage,
        config=WorkerConfig(
            concurrency=2, kill_grace=1.0, cache_dir=tmp_path / "cache"
        ),
        launcher=launcher,
    )
    worker.start()
    try:
        case = CORPUS[name]
        upload(hostile_app, tmp_path, name, case.script, **case.options)
        handle = hostile_app.queue(name)
        task = handle.wait(WAIT).task
        assert task.status == case.status, handle.log
        assert task.error == case.error
        assert "limits enforced by rlimits only" in handle.log
        wait_for(lambda: not live_processes([MARK, handle.id]))
    finally:
        worker.stop(grace=2.0)
