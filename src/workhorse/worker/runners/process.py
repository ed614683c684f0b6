"""Runs a code package revision as a child process with the IronWorker runtime contract.

Each attempt gets a fresh host work directory holding TASK_DIR with the payload
and config files; the command runs from the unpacked revision with `-payload`,
`-id`, `-d` and `-config` appended. Output is streamed to the task log while the
process runs and capped at the log limit with a marker.

A `Launcher` turns the prepared spec into the real command and a `Guard` that
holds the attempt's processes: `PlainLauncher` here (a child process in its own
session with rlimits and, where the host allows, a cgroup), `BwrapLauncher` in
`sandbox.py`, `DockerLauncher` in `docker.py`. The runner then watches three
things: the process exiting, the deadline (SIGTERM, then SIGKILL after the grace
period) and the guard reporting a limit breach (SIGKILL at once, `killed`).
"""

from __future__ import annotations

import codecs
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from workhorse.domain.limits import CodeOptions, Limits, format_size
from workhorse.domain.task import Task, TaskStatus
from workhorse.errors import WorkhorseError
from workhorse.worker.capture import LogBuffer
from workhorse.worker.runners.base import Running, RunResult
from workhorse.worker.runners.cgroups import CgroupHost, TaskCgroup
from workhorse.worker.runners.containment import Guard, ProcessGuard, preexec, rlimits
from workhorse.worker.runners.stacks import require_runtime

LOG_FLUSH_SECONDS = 0.5
READ_SIZE = 65536
# How often a running attempt's cgroup counters are read.
WATCH_SECONDS = 0.1
# How long output is still read after the leader exited (a stray writer).
DRAIN_SECONDS = 1.0
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOTE = "[workhorse] "


@dataclass(frozen=True)
class Revision:
    """An unpacked code revision on this runner."""

    code_dir: Path
    command: str
    runtime: str
    options: CodeOptions


@dataclass(frozen=True)
class ProcessSpec:
    """Everything a launcher needs to start one attempt (host paths)."""

    task: Task
    revision: Revision
    work_dir: Path
    task_dir: Path
    payload: Path
    config: Path

    @property
    def limits(self) -> Limits:
        """The limits this attempt runs with."""
        return self.revision.options.effective_limits

    @property
    def cgroup_name(self) -> str:
        """A cgroup name unique to this attempt on this host."""
        return f"{self.task.id}-{self.task.attempt}-{self.work_dir.name[-8:]}"


@dataclass(frozen=True)
class TaskPaths:
    """Where the task sees its files: host paths, or paths inside a sandbox."""

    code_dir: str
    task_dir: str
    payload: str
    config: str
    tmp_dir: str


# Where a task sees its files inside a sandbox or container.
INSIDE = TaskPaths(
    code_dir="/code",
    task_dir="/task",
    payload="/task/payload.json",
    config="/task/config.json",
    tmp_dir="/tmp",  # noqa: S108 - a private tmpfs inside the sandbox
)


def contract_env(spec: ProcessSpec, paths: TaskPaths) -> dict[str, str]:
    """The whole environment a task sees: a few defaults, the code's env vars,
    then the runtime contract (which the code cannot override). Nothing of the
    runner's own environment is passed on."""
    task = spec.task
    env = {
        "PATH": STANDARD_PATH,
        "LANG": "C.UTF-8",
        "HOME": paths.task_dir,
        "TMPDIR": paths.tmp_dir,
    }
    if spec.revision.runtime == "python":
        env["PYTHONUNBUFFERED"] = "1"  # so the log streams while the task runs
    env.update(spec.revision.options.env)
    env.update(
        {
            "PAYLOAD_FILE": paths.payload,
            "TASK_ID": task.id,
            "TASK_DIR": paths.task_dir,
            "CONFIG_FILE": paths.config,
            "CODE_NAME": task.code_name,
            "CODE_REVISION": str(task.code_revision or ""),
        }
    )
    return env


def shell_argv(spec: ProcessSpec, paths: TaskPaths) -> list[str]:
    """`sh -c "<command> \"$@\"" sh -payload P -id ID -d DIR -config C`."""
    args = [
        "-payload",
        paths.payload,
        "-id",
        spec.task.id,
        "-d",
        paths.task_dir,
        "-config",
        paths.config,
    ]
    return ["/bin/sh", "-c", spec.revision.command + ' "$@"', "sh", *args]


@dataclass(frozen=True)
class Launch:
    """How to start one attempt and how to hold it once started."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    guard: Guard
    preexec: Callable[[], None] | None = None
    notes: tuple[str, ...] = ()


class Launcher(Protocol):
    """Turns a spec into a launch (plain child process, bubblewrap, Docker)."""

    name: str

    def launch(self, spec: ProcessSpec) -> Launch:
        """How to start this attempt; raises WorkhorseError when it cannot run here."""
        ...

    def describe(self) -> str:
        """One line for the runner banner."""
        ...


def enforcement(cgroup: TaskCgroup | None) -> str:
    """How the limits are enforced, for notes and the banner."""
    if cgroup is None:
        return "rlimits only (memory as address space; no total for a process tree)"
    return f"cgroup v{cgroup.version} + rlimits"


class PlainLauncher:
    """A plain child process in its own session: no namespaces, no sandbox.

    Limits still apply: a cgroup when the host offers one (memory, processes,
    CPU time, kill-all), rlimits otherwise. Every task log starts with a warning.
    """

    name = "process"

    def __init__(self, cgroups: CgroupHost | None = None, *, reason: str = "") -> None:
        self.cgroups = cgroups
        self.reason = reason or "no sandbox configured"

    def describe(self) -> str:
        """Banner line."""
        how = self.cgroups.controllers if self.cgroups else "rlimits only"
        return f"no sandbox ({self.reason}); limits: {how}"

    def launch(self, spec: ProcessSpec) -> Launch:
        """Run the command from the code directory with host paths."""
        require_runtime(spec.revision.runtime)
        task_dir = str(spec.task_dir)
        paths = TaskPaths(
            str(spec.revision.code_dir),
            task_dir,
            str(spec.payload),
            str(spec.config),
            task_dir,
        )
        cgroup = (
            self.cgroups.create(spec.cgroup_name, spec.limits) if self.cgroups else None
        )
        limits = rlimits(
            spec.limits,
            memory_cgroup=cgroup is not None,
            pids_cgroup=cgroup is not None,
        )
        note = (
            f"{NOTE}WARNING: not sandboxed ({self.reason}): this task runs as a plain "
            "child process with the runner's user, files and network; limits: "
            f"{enforcement(cgroup)}"
        )
        return Launch(
            argv=shell_argv(spec, paths),
            env=contract_env(spec, paths),
            cwd=spec.revision.code_dir,
            guard=ProcessGuard(cgroup=cgroup, limits=spec.limits),
            preexec=preexec(cgroup, limits),
            notes=(note,),
        )


class CodeSource(Protocol):
    """Where the unpacked code of a task's revision lives."""

    def revision(self, task: Task) -> Revision:
        """The task's revision, fetched and unpacked if needed."""
        ...


class _LogSink:
    """The attempt's capped log, sent to storage in chunks."""

    def __init__(self, limit: int, send: Callable[[int, str], None]) -> None:
        self.buf = LogBuffer(limit)
        self._send = send
        self._sent = 0
        self._chunk = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self.buf.write(text)

    def flush(self) -> None:
        with self._lock:
            text = self.buf.text()
            if len(text) > self._sent:
                self._send(self._chunk, text[self._sent :])
                self._chunk += 1
                self._sent = len(text)


class _Stopper:
    """SIGTERM through the guard, SIGKILL after the grace period (once)."""

    def __init__(self, guard: Guard, grace: float) -> None:
        self.guard = guard
        self.grace = grace
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def terminate(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(self.grace, self.guard.kill)
            self._timer.daemon = True
        self.guard.terminate()
        self._timer.start()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()


def _exit_result(code: int, limits: Limits) -> RunResult:
    if code == 0:
        return RunResult(TaskStatus.COMPLETE)
    # A shell reports a child's death by signal N as 128+N; so does bubblewrap.
    sig = -code if code < 0 else code - 128 if code > 128 else 0
    if sig == signal.SIGXCPU:
        return RunResult(
            TaskStatus.KILLED, error=f"killed: CPU time limit ({limits.cpu} s)"
        )
    if sig == signal.SIGXFSZ:
        return RunResult(
            TaskStatus.KILLED,
            error=f"killed: file size limit ({format_size(limits.disk)})",
        )
    if code < 0:
        return RunResult(
            TaskStatus.ERROR, error=f"terminated by signal {signal.Signals(sig).name}"
        )
    return RunResult(TaskStatus.ERROR, error=f"exited with code {code}")


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
        revision = self.source.revision(task)
        work_dir = Path(
            tempfile.mkdtemp(prefix=f"workhorse-{task.id}-", dir=self.work_root)
        )
        task_dir = work_dir / "task"
        task_dir.mkdir()
        payload = task_dir / "payload.json"
        payload.write_text(task.payload)
        config = task_dir / "config.json"
        config.write_text(revision.options.config or "{}")
        return ProcessSpec(task, revision, work_dir, task_dir, payload, config)

    def run(self, running: Running) -> RunResult:
        """Start, stream output, watch deadline and limits, then clean up."""
        try:
            spec = self._prepare(running)
        except (OSError, ValueError, WorkhorseError) as exc:
            return RunResult(
                TaskStatus.ERROR, error=f"could not prepare the task: {exc}"
            )
        try:
            launch = self.launcher.launch(spec)
        except WorkhorseError as exc:
            shutil.rmtree(spec.work_dir, ignore_errors=True)
            return RunResult(TaskStatus.ERROR, error=str(exc))
        try:
            return self._run(running, spec, launch)
        finally:
            launch.guard.close()
            shutil.rmtree(spec.work_dir, ignore_errors=True)

    def _run(self, running: Running, spec: ProcessSpec, launch: Launch) -> RunResult:
        sink = _LogSink(
            self.log_limit, lambda chunk, text: self._append_log(running, chunk, text)
        )
        for note in launch.notes:
            sink.write(note + "\n")
        try:
            proc = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=launch.preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            sink.flush()
            return RunResult(
                TaskStatus.ERROR, error=f"could not start {launch.argv[0]}: {exc}"
            )
        launch.guard.attach(proc)
        stopper = _Stopper(launch.guard, self.kill_grace)
        running.set_interrupt(stopper.terminate)
        stop_reading = threading.Event()
        reader = threading.Thread(
            target=_pump, args=(proc, sink, stop_reading), daemon=True
        )
        reader.start()
        try:
            ended = self._watch(running, proc, launch.guard, stopper)
        finally:
            running.set_interrupt(None)
            stopper.cancel()
            launch.guard.kill()  # whatever the leader left behind
            stop_reading.set()
            reader.join()
        result = ended or _exit_result(proc.returncode, spec.limits)
        if result.status in (TaskStatus.KILLED, TaskStatus.TIMEOUT):
            sink.write(f"\n{NOTE}{result.error}\n")
        sink.flush()
        return result

    def _watch(
        self,
        running: Running,
        proc: subprocess.Popen[bytes],
        guard: Guard,
        stopper: _Stopper,
    ) -> RunResult | None:
        """Wait for the exit; returns the result when the runner ended the attempt."""
        while True:
            remaining = running.deadline - time.monotonic()
            if remaining <= 0:
                stopper.terminate()
                proc.wait()
                return RunResult(
                    TaskStatus.TIMEOUT,
                    error=f"timed out after {running.task.timeout} s",
                )
            try:
                code = proc.wait(timeout=min(WATCH_SECONDS, remaining))
            except subprocess.TimeoutExpired:
                breach = guard.breach()
                if breach is None:
                    continue
                guard.kill()
                proc.wait()
                return RunResult(TaskStatus.KILLED, error=f"killed: {breach}")
            # The kernel may have killed part of the task just before it ended.
            breach = guard.breach() if code != 0 else None
            return (
                RunResult(TaskStatus.KILLED, error=f"killed: {breach}")
                if breach
                else None
            )


def _pump(proc: subprocess.Popen[bytes], sink: _LogSink, stop: threading.Event) -> None:
    """Copy output to the task log in chunks while the process runs."""
    assert proc.stdout is not None  # noqa: S101 - Popen was given stdout=PIPE
    fd = proc.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    last = time.monotonic()
    stopped_at: float | None = None
    while True:
        ready, _, _ = select.select([fd], [], [], LOG_FLUSH_SECONDS / 2)
        now = time.monotonic()
        if stop.is_set() and stopped_at is None:
            stopped_at = now
        ended = stopped_at is not None and (
            not ready or now - stopped_at > DRAIN_SECONDS
        )
        if ready:
            data = os.read(fd, READ_SIZE)
            ended = ended or not data
            sink.write(decoder.decode(data, final=not data))
        if ended or now - last >= LOG_FLUSH_SECONDS:
            sink.flush()
            last = now
        if ended:
            break
    proc.stdout.close()
