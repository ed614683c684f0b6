"""Holding one attempt's processes: rlimits, the cgroup, signals, and limit breaches.

Nothing runs in Python between fork and exec (`preexec_fn`), so that the
runner can start children with vfork: a `preexec_fn` forces a full fork of the
runner (copying its page tables, with every thread's state) and runs Python in
the child, several milliseconds per task. Instead the task's shell sets the
rlimits before the task's command (`limits_script`), and the first process is
born in the attempt's cgroup (`TaskCgroup.hosting`, v1) or moves itself in
before it starts anything (`join_script`, v2).

`ProcessGuard` is what the process runner talks to once a task has started:
it says whether a limit was crossed (`breach`), asks the task to stop
(`terminate`: SIGTERM to the task's own processes), stops it for good (`kill`:
SIGKILL to everything, found through the cgroup, the process group and the
/proc tree) and cleans up (`close`).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from workhorse.domain.limits import Limits, format_size
from workhorse.worker.runners.cgroups import TaskCgroup

# Exit status of an attempt whose start script failed (no cgroup, no limits).
START_FAILED = 125
# rlimit -> (`ulimit` option, unit in bytes). These options and units are the
# same in dash, bash (as sh, in POSIX mode) and busybox sh.
_ULIMIT = {
    resource.RLIMIT_CPU: ("-t", 1),
    resource.RLIMIT_FSIZE: ("-f", 512),
    resource.RLIMIT_CORE: ("-c", 512),
    resource.RLIMIT_NOFILE: ("-n", 1),
    resource.RLIMIT_AS: ("-v", 1024),
}


class Guard(Protocol):
    """Containment of one started attempt (see the module docstring)."""

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """The attempt's leader process has started."""
        ...

    def breach(self) -> str | None:
        """The limit the task went over, e.g. `memory limit (64 MiB)`, or None."""
        ...

    def terminate(self) -> None:
        """Ask every process of the task to stop (SIGTERM)."""
        ...

    def kill(self) -> None:
        """Stop every process of the task now (SIGKILL)."""
        ...

    def close(self) -> None:
        """Kill leftovers and release what the attempt held."""
        ...


def rlimits(
    limits: Limits,
    *,
    memory_cgroup: bool,
    pids_cgroup: bool,
    privileged: bool | None = None,
) -> list[tuple[int, int, int]]:
    """(resource, soft, hard) for the task's shell to set.

    RLIMIT_AS stands in for the memory limit only without a memory cgroup: it
    counts reserved address space, which some runtimes (V8, the JVM) reserve
    generously. RLIMIT_NPROC counts every process of the user, and root is exempt
    from it, so it is a rough stand-in used only without a pids cgroup.

    Args:
        privileged: whether the process that sets them may raise hard limits
            (default: whether the runner is root). One that may not gets values
            capped at the runner's own hard limits.
    """
    cap = os.geteuid() != 0 if privileged is None else not privileged
    out = [
        _capped(resource.RLIMIT_CPU, limits.cpu, limits.cpu + 1, cap),
        _capped(resource.RLIMIT_FSIZE, limits.disk, limits.disk, cap),
        (resource.RLIMIT_CORE, 0, 0),
        _capped(resource.RLIMIT_NOFILE, limits.open_files, limits.open_files, cap),
    ]
    if not memory_cgroup:
        out.append(_capped(resource.RLIMIT_AS, limits.memory, limits.memory, cap))
    if not pids_cgroup and os.geteuid() != 0:
        nproc = limits.processes + _user_processes()
        out.append(_capped(resource.RLIMIT_NPROC, nproc, nproc, cap))
    return out


def _capped(res: int, soft: int, hard: int, cap: bool) -> tuple[int, int, int]:
    _, limit = resource.getrlimit(res)
    if cap and limit != resource.RLIM_INFINITY:
        hard = min(hard, limit)
        soft = min(soft, hard)
    return (res, soft, hard)


def _user_processes() -> int:
    """Threads the runner's user already has (RLIMIT_NPROC counts them all)."""
    uid = str(os.getuid())
    count = 0
    for pid in _proc_pids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [uid]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


def join_script(cgroup: TaskCgroup | None) -> str:
    """Shell lines with which a process moves itself into `cgroup` (for v2, where
    the runner cannot start it inside). A failure ends it with status 125."""
    if cgroup is None:
        return ""
    failed = _fail("could not join the task's cgroup")
    return "".join(
        f"echo 0 >{shlex.quote(path)} || {failed}\n" for path in cgroup.join_files
    )


def limits_script(limits: list[tuple[int, int, int]]) -> str:
    """Shell lines that set the rlimits, run by the task's shell before the
    task's command. A failure ends it with status 125 and a line in its log.
    Sizes are rounded up to whole blocks of `ulimit` (512 bytes or 1 KiB)."""
    failed = _fail("could not set the task's rlimits")
    return "".join(f"{_ulimit(*limit)} || {failed}\n" for limit in limits)


def _fail(what: str) -> str:
    return f"{{ echo {shlex.quote('[workhorse] ' + what)} >&2; exit {START_FAILED}; }}"


def _ulimit(res: int, soft: int, hard: int) -> str:
    if res == resource.RLIMIT_NPROC:
        # dash and busybox name it -p, bash -u (where -p is the pipe size).
        return f"{{ ulimit -p {soft} 2>/dev/null || ulimit -u {soft}; }}"
    option, unit = _ULIMIT[res]
    soft, hard = -(-soft // unit), -(-hard // unit)
    if soft == hard:
        return f"ulimit {option} {soft}"  # soft and hard at once
    # Both to the hard value first (whatever the current ones), then soft down.
    return f"ulimit {option} {hard} && ulimit -S {option} {soft}"


def _proc_pids() -> Iterable[int]:
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, parents before children (from /proc)."""
    children: dict[int, list[int]] = {}
    for pid in _proc_pids():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _first_child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class ProcessGuard:
    """Guard for a task started as a child process (plain or in bubblewrap).

    With a cgroup, the cgroup is the list of the task's processes; without one,
    the process group and the tree below the leader in /proc are.

    Args:
        cgroup: the attempt's cgroup, if the host offers one.
        limits: the limits in force (for breach messages and CPU time).
        sandboxed: the leader is bubblewrap's monitor, whose child is the
            sandbox's init. Both are spared by `terminate` (a signal to the
            monitor would end the sandbox at once, without the grace period)
            and the process group is not signalled (the task runs in a session
            of its own inside).
        disk_paths: directories inside the task's mount namespace whose filling
            up is a breach of the disk limit (size-capped tmpfs mounts).
    """

    def __init__(
        self,
        *,
        cgroup: TaskCgroup | None,
        limits: Limits,
        sandboxed: bool = False,
        disk_paths: tuple[str, ...] = (),
    ) -> None:
        self.cgroup = cgroup
        self.limits = limits
        self.sandboxed = sandboxed
        self.disk_paths = disk_paths
        self.proc: subprocess.Popen[bytes] | None = None
        self._inner: int | None = None

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """Remember the leader."""
        self.proc = proc

    def _inner_pid(self) -> int | None:
        """The sandbox's init: the first process in the task's namespaces."""
        if self._inner is None and self.proc is not None:
            self._inner = _first_child(self.proc.pid)
        return self._inner

    def breach(self) -> str | None:
        """Check the cgroup counters and the size-capped directories."""
        cg, lim = self.cgroup, self.limits
        if cg is not None:
            if cg.oom_kills():
                return f"memory limit ({format_size(lim.memory)})"
            if cg.pids_refused():
                return f"process limit ({lim.processes})"
            used = cg.cpu_seconds()
            if used is not None and used >= lim.cpu:
                return f"CPU time limit ({lim.cpu} s)"
        return self._disk_full()

    def _disk_full(self) -> str | None:
        inner = self._inner_pid() if self.disk_paths else None
        for path in self.disk_paths if inner else ():
            try:
                st = os.statvfs(f"/proc/{inner}/root{path}")
            except OSError:
                return None
            if st.f_bavail == 0:
                return f"disk limit ({format_size(self.limits.disk)}): {path} is full"
        return None

    def _members(self) -> list[int]:
        """The task's processes now (the leader first)."""
        if self.proc is None:
            return []
        if self.cgroup is not None:
            return [self.proc.pid, *sorted(self.cgroup.pids() - {self.proc.pid})]
        if self.proc.poll() is not None:
            return []  # the leader's orphans cannot be told from anyone else's
        return [self.proc.pid, *descendants(self.proc.pid)]

    def _signal_group(self, sig: int) -> None:
        if self.proc is not None and not self.sandboxed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def terminate(self) -> None:
        """SIGTERM the task's processes (not the sandbox's own)."""
        if self.proc is None:
            return
        spare = {self.proc.pid, self._inner_pid()} if self.sandboxed else set()
        self._signal_group(signal.SIGTERM)
        _signal([p for p in self._members() if p not in spare], signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL everything: the group, the tree or the cgroup."""
        if self.proc is None:
            return
        if self.cgroup is not None:
            # The leader joins the cgroup first thing, before it starts anything,
            # so every descendant is in it; a leader stopped before it got that
            # far is not yet, hence the signal to the leader itself, first.
            self.proc.kill()
            self.cgroup.kill()
            return
        members = self._members()
        if self.sandboxed:
            members = members[:1]  # the monitor; the sandbox dies with it
        self._signal_group(signal.SIGKILL)
        _signal(members, signal.SIGKILL)

    def close(self) -> None:
        """Kill whatever is left and remove the cgroup."""
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.remove()
        elif self.proc is not None and self.proc.poll() is None:
            self.kill()
