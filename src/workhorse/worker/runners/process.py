"""Runs a code package revision as a child process with the IronWorker runtime contract.

Each attempt gets a fresh working directory (TASK_DIR) holding the payload and config
files; the command runs from the unpacked revision with `-payload`, `-id`, `-d` and
`-config` appended, in its own session (process group). Output is streamed to the
task log while the process runs. On timeout, cancel or lost lease the whole group gets
SIGTERM, then SIGKILL after a grace period.

A `Launcher` turns the prepared spec into the real command: the plain one here; the
sandbox wraps it in bubblewrap.
"""

from __future__ import annotations

import codecs
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workhorse.domain.task import Task, TaskStatus
from workhorse.worker.capture import LogBuffer
from workhorse.worker.runners.base import RunResult, Running

LOG_FLUSH_SECONDS = 0.5
READ_SIZE = 65536


@dataclass(frozen=True)
class ProcessSpec:
    """Everything a launcher needs to start one attempt."""

    task: Task
    code_dir: Path
    work_dir: Path
    task_dir: Path
    command: str
    env: dict[str, str]
    args: list[str]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    """The argv, environment and working directory to exec."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    preexec: Callable[[], None] | None = None


class Launcher(Protocol):
    """Turns a spec into a launch (plain child process, bubblewrap, ...)."""

    name: str

    def launch(self, spec: ProcessSpec) -> Launch:
        """How to start this attempt."""
        ...


class PlainLauncher:
    """A plain child process in its own session: no namespaces, no sandbox."""

    name = "process"

    def launch(self, spec: ProcessSpec) -> Launch:
        """`sh -c "<command> \"$@\"" sh <args>` from the code directory."""
        argv = ["/bin/sh", "-c", spec.command + ' "$@"', "sh", *spec.args]
        return Launch(argv=argv, env=spec.env, cwd=spec.code_dir)


class CodeSource(Protocol):
    """Where the unpacked code of a task's revision lives."""

    def directory(self, task: Task) -> tuple[Path, str, dict[str, Any]]:
        """(code dir, command, options) of the task's revision, fetched if needed."""
        ...


def runtime_env(spec_env: dict[str, str], task: Task, task_dir: Path, payload: Path, config: Path) -> dict[str, str]:
    """The environment a task sees: the runtime contract and the code's env vars only."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(task_dir),
        "TMPDIR": str(task_dir),
        **spec_env,
        "PAYLOAD_FILE": str(payload),
        "TASK_ID": task.id,
        "TASK_DIR": str(task_dir),
        "CONFIG_FILE": str(config),
        "CODE_NAME": task.code_name,
        "CODE_REVISION": str(task.code_revision or ""),
    }
    return env


class ProcessRunner:
    """Runs package tasks as child processes."""

    def __init__(
        self,
        source: CodeSource,
        *,
        launcher: Launcher | None = None,
        log_limit: int,
        append_log: Callable[[Running, int, str], None],
        kill_grace: float = 5.0,
        work_root: Path | None = None,
    ) -> None:
        self.source = source
        self.launcher: Launcher = launcher or PlainLauncher()
        self.log_limit = log_limit
        self._append_log = append_log
        self.kill_grace = kill_grace
        self.work_root = work_root

    def _prepare(self, running: Running) -> ProcessSpec:
        task = running.task
        code_dir, command, options = self.source.directory(task)
        work_dir = Path(tempfile.mkdtemp(prefix=f"workhorse-{task.id}-", dir=self.work_root))
        task_dir = work_dir / "task"
        task_dir.mkdir()
        payload = task_dir / "payload.json"
        payload.write_text(task.payload)
        config = task_dir / "config.json"
        config.write_text(options.get("config") or "{}")
        env = runtime_env(dict(options.get("env") or {}), task, task_dir, payload, config)
        args = ["-payload", str(payload), "-id", task.id, "-d", str(task_dir), "-config", str(config)]
        return ProcessSpec(task, code_dir, work_dir, task_dir, command, env, args, options)

    def run(self, running: Running) -> RunResult:
        """Start, stream output, wait with the deadline, then clean up."""
        try:
            spec = self._prepare(running)
        except (OSError, ValueError) as exc:
            return RunResult(TaskStatus.ERROR, error=f"could not prepare the task: {exc}")
        try:
            return self._run(running, spec)
        finally:
            shutil.rmtree(spec.work_dir, ignore_errors=True)

    def _run(self, running: Running, spec: ProcessSpec) -> RunResult:
        launch = self.launcher.launch(spec)
        try:
            proc = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=launch.preexec,  # noqa: PLW1509 - rlimits must be set in the child
            )
        except OSError as exc:
            return RunResult(TaskStatus.ERROR, error=f"could not start {launch.argv[0]}: {exc}")
        killer = _GroupKiller(proc, self.kill_grace)
        running.set_interrupt(killer.terminate)
        stop_reading = threading.Event()
        reader = threading.Thread(
            target=self._pump, args=(running, proc, stop_reading), daemon=True
        )
        reader.start()
        try:
            remaining = running.deadline - time.monotonic()
            proc.wait(timeout=max(remaining, 0))
        except subprocess.TimeoutExpired:
            running.abort(TaskStatus.TIMEOUT, f"timed out after {running.task.timeout} s")
            proc.wait()
        finally:
            running.set_interrupt(None)
            killer.finish()
            # A daemon that escaped the group may hold the pipe open: stop reading.
            stop_reading.set()
            reader.join()
        code = proc.returncode
        if code == 0:
            return RunResult(TaskStatus.COMPLETE)
        if code < 0:
            name = signal.Signals(-code).name
            return RunResult(TaskStatus.ERROR, error=f"terminated by signal {name}")
        return RunResult(TaskStatus.ERROR, error=f"exited with code {code}")

    def _pump(
        self, running: Running, proc: subprocess.Popen[bytes], stop: threading.Event
    ) -> None:
        """Copy output to the task log in chunks while the process runs."""
        assert proc.stdout is not None
        buf = LogBuffer(self.log_limit)
        sent = 0
        chunk = 0
        last = time.monotonic()
        fd = proc.stdout.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            ready, _, _ = select.select([fd], [], [], LOG_FLUSH_SECONDS / 2)
            if ready:
                data = os.read(fd, READ_SIZE)
                ended = not data
                buf.write(decoder.decode(data, final=ended))
            else:
                ended = stop.is_set()
            now = time.monotonic()
            if ended or now - last >= LOG_FLUSH_SECONDS:
                text = buf.text()
                if len(text) > sent:
                    self._append_log(running, chunk, text[sent:])
                    chunk += 1
                    sent = len(text)
                last = now
            if ended:
                break
        proc.stdout.close()


class _GroupKiller:
    """SIGTERM to the process group, SIGKILL after the grace period."""

    def __init__(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        self.proc = proc
        self.grace = grace
        self._timer: threading.Timer | None = None

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate(self) -> None:
        """Ask the group to stop; force it after the grace period."""
        self._signal(signal.SIGTERM)
        self._timer = threading.Timer(self.grace, self._signal, args=(signal.SIGKILL,))
        self._timer.daemon = True
        self._timer.start()

    def finish(self) -> None:
        """The leader has exited: kill whatever it left in its group."""
        if self._timer is not None:
            self._timer.cancel()
        self._signal(signal.SIGKILL)


def decode_options(raw: str | None) -> dict[str, Any]:
    """Stored options JSON to a dict."""
    return json.loads(raw or "{}")
