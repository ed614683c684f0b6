"""Runs a code package revision as a child process with the IronWorker runtime contract.

Each attempt gets a fresh host work directory holding TASK_DIR with the payload
and config files; the command runs from the unpacked revision with `-payload`,
`-id`, `-d` and `-config` appended. Output is streamed to the task log while the
process runs and capped at the log limit with a marker.

A `Launcher` turns the prepared spec into the real command and a `Guard` that
holds the attempt's processes: `PlainLauncher` here (a child process in its own
session with rlimits and, where the host allows, a cgroup), `BwrapLauncher` in
`sandbox.py`, `DockerLauncher` in `docker.py`. The runner then watches, from
the thread that started it: the process's output, its exit (through a pidfd, so
it is seen at once), the deadline (SIGTERM, then SIGKILL after the grace
period) and the guard reporting a limit breach (SIGKILL at once, `killed`).

Children are started without `preexec_fn`, so that `subprocess` can use vfork
instead of copying the runner: the rlimits are set by the task's shell before
the task's command, and the leader is born in the attempt's cgroup (see
`containment` and `cgroups`).
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import functools
import logging
import math
import os
import secrets
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
from typing import IO, Protocol

from workhorse.domain.limits import CodeOptions, Limits, format_size
from workhorse.domain.task import Task, TaskStatus
from workhorse.errors import WorkhorseError
from workhorse.worker.capture import LogBuffer
from workhorse.worker.runners.base import Running, RunResult
from workhorse.worker.runners.cgroups import CgroupHost, TaskCgroup
from workhorse.worker.runners.containment import (
    Guard,
    ProcessGuard,
    join_script,
    limits_script,
    rlimits,
)
from workhorse.worker.runners.stacks import SEARCH_PATH, require_runtime

log = logging.getLogger(__name__)
LOG_FLUSH_SECONDS = 0.5
READ_SIZE = 65536
# How often a running attempt's cgroup counters are read.
WATCH_SECONDS = 0.1
# Once the leader has exited and its leftovers are killed, output still in the
# pipe is read for at most this long (a writer that escaped keeps it open).
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
    """Everything a launcher needs to start one attempt.

    The host paths are where `write_files` puts TASK_DIR with the payload and
    config files, for the launchers that need them on the host (the sandbox
    passes both in memory instead and needs no host directory).
    """

    task: Task
    revision: Revision
    work_dir: Path
    task_dir: Path
    payload: Path
    config: Path

    @functools.cached_property
    def limits(self) -> Limits:
        """The limits this attempt runs with."""
        return self.revision.options.effective_limits

    @property
    def cgroup_name(self) -> str:
        """A cgroup name unique to this attempt on this host."""
        return f"{self.task.id}-{self.task.attempt}-{self.work_dir.name[-8:]}"

    @property
    def config_text(self) -> str:
        """The code's config file content."""
        return self.revision.options.config or "{}"

    def write_files(self) -> None:
        """Create the private work directory, TASK_DIR in it, and the payload and
        config files in TASK_DIR."""
        self.work_dir.mkdir(mode=0o700)
        self.task_dir.mkdir()
        self.payload.write_text(self.task.payload)
        self.config.write_text(self.config_text)


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


def shell_argv(spec: ProcessSpec, paths: TaskPaths, prologue: str = "") -> list[str]:
    """`sh -c "<command> \"$@\"" sh -payload P -id ID -d DIR -config C`, with the
    `prologue` lines run first by the same shell."""
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
    return ["/bin/sh", "-c", prologue + spec.revision.command + ' "$@"', "sh", *args]


@dataclass(frozen=True)
class Launch:
    """How to start one attempt and how to hold it once started."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    guard: Guard
    notes: tuple[str, ...] = ()
    # The cgroup the leader is started in (`TaskCgroup.hosting`), if any.
    host: TaskCgroup | None = None
    # Descriptors the leader inherits (closed in the runner once it started).
    pass_fds: tuple[int, ...] = ()


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


@functools.cache
def pdeathsig_prefix() -> tuple[str, ...]:
    """`setpriv --pdeathsig KILL --` when util-linux setpriv has that option:
    the child then dies with the runner thread that started it. Empty otherwise.
    Found out once per process, at the first launch (a runner of Python tasks
    alone never spends the trial run)."""
    setpriv = shutil.which("setpriv", path=SEARCH_PATH)
    if setpriv is None:
        return ()
    argv = (setpriv, "--pdeathsig", "KILL", "--", "/bin/true")
    try:
        works = subprocess.run(argv, capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    return argv[:4] if works.returncode == 0 else ()


class PlainLauncher:
    """A plain child process in its own session: no namespaces, no sandbox.

    Limits still apply: a cgroup when the host offers one (memory, processes,
    CPU time, kill-all), rlimits otherwise. Every task log starts with a warning.
    The task's shell sets the rlimits (and on cgroup v2 joins the cgroup) before
    the command; it runs under `setpriv --pdeathsig KILL` where setpriv works.
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
        spec.write_files()
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
        host = cgroup if cgroup is not None and cgroup.can_host else None
        prologue = ("" if host else join_script(cgroup)) + limits_script(limits)
        return Launch(
            argv=[*pdeathsig_prefix(), *shell_argv(spec, paths, prologue)],
            env=contract_env(spec, paths),
            cwd=spec.revision.code_dir,
            guard=ProcessGuard(cgroup=cgroup, limits=spec.limits),
            notes=(note,),
            host=host,
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

    def unsent(self) -> str:
        """What has not been sent yet."""
        with self._lock:
            return self.buf.text()[self._sent :]

    def flush_soon(self) -> None:
        """Send what is new from another thread (the caller may hold locks)."""
        threading.Thread(target=self.flush, name="log-flush", daemon=True).start()


class _Output:
    """The attempt's stdout and stderr (one pipe), decoded into the log."""

    def __init__(self, stream: IO[bytes], sink: _LogSink) -> None:
        self.stream = stream
        self.fd = stream.fileno()
        self.sink = sink
        self.open = True
        self.pending = False  # written to the sink since the last flush
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> None:
        """Read once; the pipe must be readable (or at its end)."""
        data = os.read(self.fd, READ_SIZE)
        self.open = bool(data)
        text = self._decoder.decode(data, final=not data)
        if text:
            self.sink.write(text)
            self.pending = True

    def flush(self) -> None:
        """Send what is new (a storage error is retried at the next flush)."""
        if not self.pending:
            return
        try:
            self.sink.flush()
        except WorkhorseError as exc:
            log.warning(
                "could not store task output yet: %s",
                exc,
                extra={"event": "log_flush_failed"},
            )
            return
        self.pending = False

    def drain(self) -> None:
        """Read what the pipe holds now, without waiting for more."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        give_up = time.monotonic() + DRAIN_SECONDS
        while self.open and poller.poll(0) and time.monotonic() < give_up:
            self.read()
        self.stream.close()


def _pidfd(pid: int) -> int | None:
    """A descriptor that polls readable once `pid` has exited (Linux 5.3+)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000))


class _Follow:
    """Runs on the thread that started the attempt, until its leader exits: reads
    its output, sends it to the log every LOG_FLUSH_SECONDS, checks the guard
    every WATCH_SECONDS and the deadline. It sleeps in one poll(2) on the pipe
    and a pidfd of the leader, so an exit is seen as it happens; without a
    pidfd (an old kernel, a seccomp filter), on waitpid after each wake-up."""

    def __init__(
        self,
        running: Running,
        proc: subprocess.Popen[bytes],
        guard: Guard,
        stopper: _Stopper,
        out: _Output,
    ) -> None:
        self.running = running
        self.proc = proc
        self.guard = guard
        self.stopper = stopper
        self.out = out
        self.ended: RunResult | None = None
        self.pidfd = _pidfd(proc.pid)
        self.poller = select.poll()
        self.poller.register(out.fd, select.POLLIN)
        if self.pidfd is not None:
            self.poller.register(self.pidfd, select.POLLIN)

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def run(self) -> RunResult | None:
        """Until the exit; the result when the runner ended the attempt."""
        now = time.monotonic()
        check_at = now + WATCH_SECONDS
        flush_at = now + LOG_FLUSH_SECONDS
        while True:
            if self.ended is None and now >= self.running.deadline:
                self.stopper.terminate()
                self.ended = RunResult(
                    TaskStatus.TIMEOUT,
                    error=f"timed out after {self.running.task.timeout} s",
                )
            wake = min(check_at, flush_at)
            if self.ended is None:
                wake = min(wake, self.running.deadline)
            if self._wait(wake - now):
                break
            now = time.monotonic()
            if now >= check_at:
                self._check()
                check_at = now + WATCH_SECONDS
            if now >= flush_at:
                self.out.flush()
                flush_at = now + LOG_FLUSH_SECONDS
        code = self.proc.wait()
        if self.ended is None and code != 0:
            # The kernel may have killed part of the task just before it ended.
            breach = self.guard.breach()
            if breach:
                self.ended = RunResult(TaskStatus.KILLED, error=f"killed: {breach}")
        return self.ended

    def _check(self) -> None:
        if self.ended is not None:
            return
        breach = self.guard.breach()
        if breach:
            self.guard.kill()
            self.ended = RunResult(TaskStatus.KILLED, error=f"killed: {breach}")

    def _wait(self, timeout: float) -> bool:
        """Sleep until output, the leader's exit or `timeout`; True once it exited."""
        if self.pidfd is None and not self.out.open:
            try:
                self.proc.wait(max(timeout, 0))
            except subprocess.TimeoutExpired:
                return False
            return True
        exited = False
        for fd, _ in self.poller.poll(_ms(timeout)):
            if fd != self.out.fd:
                exited = True  # the pidfd
                continue
            self.out.read()
            if not self.out.open:
                self.poller.unregister(fd)
        if self.pidfd is None:
            return self.proc.poll() is not None
        return exited


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
        root = self.work_root or Path(tempfile.gettempdir())
        # Created by the launcher if it needs it (ProcessSpec.write_files).
        work_dir = root / f"workhorse-{task.id}-{secrets.token_hex(4)}"
        task_dir = work_dir / "task"
        return ProcessSpec(
            task,
            revision,
            work_dir,
            task_dir,
            task_dir / "payload.json",
            task_dir / "config.json",
        )

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
        except (OSError, ValueError, WorkhorseError) as exc:
            shutil.rmtree(spec.work_dir, ignore_errors=True)
            error = str(exc)
            if not isinstance(exc, WorkhorseError):
                error = f"could not prepare the task: {exc}"
            return RunResult(TaskStatus.ERROR, error=error)
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
        born_in = launch.host.hosting() if launch.host else contextlib.nullcontext()
        try:
            # No preexec_fn: subprocess may then use vfork (see the module docstring).
            with born_in:
                proc = subprocess.Popen(
                    launch.argv,
                    cwd=launch.cwd,
                    env=launch.env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=launch.pass_fds,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            sink.flush()
            return RunResult(
                TaskStatus.ERROR, error=f"could not start {launch.argv[0]}: {exc}"
            )
        finally:
            for fd in launch.pass_fds:
                os.close(fd)  # the leader has its own copies
        assert proc.stdout is not None  # noqa: S101 - Popen was given stdout=PIPE
        launch.guard.attach(proc)
        stopper = _Stopper(launch.guard, self.kill_grace)
        out = _Output(proc.stdout, sink)
        follow = _Follow(running, proc, launch.guard, stopper, out)
        running.set_interrupt(stopper.terminate)
        try:
            ended = follow.run()
        finally:
            running.set_interrupt(None)
            stopper.cancel()
            follow.close()
            launch.guard.kill()  # whatever the leader left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.kill_grace)  # at once, unless the follow failed
            out.drain()
        result = ended or _exit_result(proc.returncode, spec.limits)
        if result.status in (TaskStatus.KILLED, TaskStatus.TIMEOUT):
            sink.write(f"\n{NOTE}{result.error}\n")
        # The rest of the log travels with the result and is stored in the
        # transaction that records the outcome: no write of its own. An abort
        # that lands before the worker takes the result drops the result; the
        # hook (which fires only then) stores the rest on its own instead.
        running.set_interrupt(sink.flush_soon)
        return dataclasses.replace(result, log=sink.unsent() or None)
