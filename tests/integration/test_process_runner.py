"""The process runner on its own, with real child processes and no database: where
a task's processes start, which rlimits its shell sets, and where the end of its
log goes."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.factories import package_task
from workhorse.domain.limits import code_options
from workhorse.domain.task import Task, TaskStatus
from workhorse.worker.runners.base import Running
from workhorse.worker.runners.cgroups import CgroupHost
from workhorse.worker.runners.process import (
    Launcher,
    PlainLauncher,
    ProcessRunner,
    Revision,
)
from workhorse.worker.runners.sandbox import bwrap_launcher

WAIT = 30.0


def make_task(**overrides: Any) -> Task:
    return package_task(
        **{
            "id": f"pr{os.getpid()}",
            "code_name": "probe",
            "payload": '{"n": 1}',
            **overrides,
        }
    )


class Source:
    """One revision, from a script."""

    def __init__(self, root: Path, script: str, **options: Any) -> None:
        code = root / "code"
        code.mkdir(exist_ok=True)
        (code / "run.sh").write_text(script)
        self.rev = Revision(
            code_dir=code,
            command="sh run.sh",
            runtime="sh",
            options=code_options(**options),
        )

    def revision(self, task: Task) -> Revision:
        return self.rev


class Log:
    """Chunks sent while (or after) the task runs."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.sent = threading.Event()

    def append(self, running: Running, chunk: int, text: str) -> None:
        self.chunks.append(text)
        self.sent.set()


@pytest.fixture
def work_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="workhorse-runner-test-") as root:
        yield Path(root)


def sandbox(cgroups: CgroupHost | None) -> Launcher:
    launcher, problem = bwrap_launcher(cgroups, 65534)
    if launcher is None:
        pytest.skip(problem)
    return launcher


def run(
    launcher: Launcher, root: Path, script: str, **options: Any
) -> tuple[Running, str, str | None, Log]:
    log = Log()
    runner = ProcessRunner(
        Source(root, script, **options),
        launcher=launcher,
        log_limit=1 << 20,
        append_log=log.append,
        kill_grace=1.0,
        work_root=root,
    )
    running = Running(make_task(), "token")
    result = runner.run(running)
    return running, result.status, result.log, log


def test_the_tasks_first_process_is_already_in_its_cgroup(work_root: Path) -> None:
    cgroups = CgroupHost.detect()
    if cgroups is None:
        pytest.skip("no writable cgroups here")
    # `exec` makes the shell itself print: the process the runner started.
    _, status, log, _ = run(
        PlainLauncher(cgroups), work_root, "exec cat /proc/self/cgroup\n"
    )
    assert status == TaskStatus.COMPLETE
    assert log is not None
    wanted = (":pids:", ":memory:") if cgroups.version == 1 else ("0::",)
    lines = [line for line in log.splitlines() if any(w in line for w in wanted)]
    assert len(lines) == len(wanted), log
    assert all(f"/{make_task().id}-1-" in line for line in lines), log
    # ...and the runner's own thread is back where it was.
    own = Path(f"/proc/self/task/{threading.get_native_id()}/cgroup").read_text()
    assert make_task().id not in own


def test_the_sandboxed_shell_sets_the_rlimits_before_the_command(
    work_root: Path,
) -> None:
    _, status, log, _ = run(
        sandbox(CgroupHost.detect()),
        work_root,
        'ulimit -n; ulimit -t; cat "$PAYLOAD_FILE"; echo; ls -l "$CONFIG_FILE"\n',
        limits={"open_files": 77, "cpu": 33},
        config='{"c": 2}',
    )
    assert status == TaskStatus.COMPLETE, log
    assert log is not None
    lines = log.splitlines()
    assert lines[-4:-1] == ["77", "33", '{"n": 1}']
    assert lines[-1].startswith("-r--r--r--")
    assert list(work_root.glob("workhorse-*")) == []  # nothing on the host


def test_the_end_of_the_log_travels_with_the_result(work_root: Path) -> None:
    running, status, log, sent = run(PlainLauncher(), work_root, "echo bye\n")
    assert status == TaskStatus.COMPLETE
    assert log is not None
    assert log.endswith("bye\n")
    assert sent.chunks == []  # no write of its own
    # The worker takes the result: an abort coming later has nothing to store.
    assert running.finish()
    assert not running.abort(TaskStatus.CANCELLED, "too late")
    assert sent.chunks == []


def test_an_abort_that_wins_over_the_result_stores_the_end_of_the_log(
    work_root: Path,
) -> None:
    running, _, log, sent = run(PlainLauncher(), work_root, "echo last words\n")
    # Cancelled after the process ended but before the worker took the result:
    # the result is dropped, so the runner sends the text itself.
    assert running.abort(TaskStatus.CANCELLED, "cancelled")
    assert sent.sent.wait(WAIT)
    assert "".join(sent.chunks) == log
    assert not running.finish()
