"""kill -9 of a runner in the middle of a code-package task leaves no task process:
the sandbox dies with its runner; without a sandbox, the next runner on the host
finds the dead runner's cgroup and kills what is left in it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.chaos.conftest import wait_for
from tests.integration.test_sandbox_containment import live_processes
from workhorse import App
from workhorse.client import CodePackage
from workhorse.settings import Settings

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.mark.parametrize("sandbox", ["bwrap", "process"])
def test_a_killed_runner_leaves_no_task_processes(
    settings: Settings,
    spawn_runner: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
    sandbox: str,
) -> None:
    marker = f"7{os.getpid() % 1000:03d}{time.monotonic_ns() % 1000:03d}"
    app = App(settings=settings)
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "run.sh").write_text(f"sleep {marker} &\necho started\nwait\n")
    app.client.upload_directory(src, CodePackage(name="hang", command="sh run.sh"))
    handle = app.queue("hang")
    env = {"WORKHORSE_SANDBOX": sandbox}
    runner = spawn_runner(env=env)
    wait_for(lambda: "started" in handle.log, 60, "the task to start")
    assert live_processes([marker])
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    if sandbox == "process":
        # The task's own shell dies with the runner; its background child does not...
        assert live_processes([marker])
        # ...until the next runner on this host sweeps the dead runner's cgroup.
        spawn_runner(env=env)
    wait_for(lambda: not live_processes([marker]), 30, "no task process left")
    app.close()
