"""Per-task control groups: memory and process limits, CPU accounting, kill-all.

Every process of a task is in a fresh cgroup from the start, so every
descendant, including a daemon that left the process group, is found and killed
through it, and the kernel enforces the limits for the whole tree. On v1 the
task's first process is born in it: the runner thread that starts it moves
itself in around the spawn (`TaskCgroup.hosting`). On v2, where a thread cannot
leave its process's cgroup, the first process moves itself in before it starts
anything (`TaskCgroup.join_files`).

- cgroup v2: memory.max (+ memory.swap.max 0), pids.max; memory.events oom_kill,
  pids.events max, cpu.stat usage_usec; cgroup.kill.
- cgroup v1: memory.limit_in_bytes (+ memsw), pids.max, cpuacct.usage;
  memory.oom_control oom_kill, pids.events max.

Task cgroups live under `workhorse/r<pid>/` inside the runner's own cgroup, so
they stay within whatever the runner itself is allowed. A runner that starts
removes the directories of runner processes that no longer exist, killing what
was left in them (the tree of a task whose runner was killed with SIGKILL). When
nothing is writable (an unprivileged runner without delegation)
`CgroupHost.detect` returns None and the runner falls back to rlimits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workhorse.domain.limits import Limits

log = logging.getLogger(__name__)
PARENT = "workhorse"
_V1_FILES = {
    "memory": "memory.limit_in_bytes",
    "pids": "pids.max",
    "cpuacct": "cpuacct.usage",
}
KILL_ROUNDS = 200
# rmdir of a cgroup whose last process is still exiting (a sandbox's init is
# listed until the host's init reaps it, usually well under a millisecond) is
# retried after pauses growing to REMOVE_PAUSE, for about a second in all.
REMOVE_TRIES = 200
REMOVE_PAUSE = 0.005


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
    except OSError:
        return False
    return True


def _field(text: str, key: str) -> int:
    """`key N` from a flat-keyed cgroup file (memory.events, pids.events ...)."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


@dataclass(frozen=True)
class CgroupHost:
    """Where this runner may create task cgroups.

    Attributes:
        version: 1 or 2.
        parents: controller (v1) or "unified" (v2) -> the directory task cgroups
            are created in.
    """

    version: int
    parents: dict[str, Path]

    @property
    def controllers(self) -> str:
        """Human-readable summary for the runner banner."""
        if self.version == 2:
            return "cgroup v2 (memory, pids, cpu)"
        return f"cgroup v1 ({', '.join(sorted(self.parents))})"

    @classmethod
    def detect(
        cls, *, mounts: str | None = None, own: str | None = None
    ) -> CgroupHost | None:
        """Find usable controllers from /proc/mounts and /proc/self/cgroup text.

        v1 needs at least the memory and pids hierarchies to be writable; v2
        needs memory and pids delegated to the runner's cgroup.
        """
        mounts = _read(Path("/proc/mounts")) if mounts is None else mounts
        own = _read(Path("/proc/self/cgroup")) if own is None else own
        v1_mounts: dict[str, Path] = {}
        v2_mount: Path | None = None
        for line in mounts.splitlines():
            parts = line.split()
            if len(parts) < 4:
                continue
            if parts[2] == "cgroup2":
                v2_mount = Path(parts[1])
            elif parts[2] == "cgroup":
                for opt in parts[3].split(","):
                    if opt in _V1_FILES:
                        v1_mounts[opt] = Path(parts[1])
        paths: dict[str, str] = {}
        for line in own.splitlines():
            num, _, rest = line.partition(":")
            names, _, path = rest.partition(":")
            for name in names.split(",") if num != "0" else ["unified"]:
                paths[name] = path
        if "memory" in v1_mounts and "pids" in v1_mounts:
            return _v1(v1_mounts, paths)
        if v2_mount is not None and "unified" in paths:
            return _v2(v2_mount / paths["unified"].lstrip("/"))
        return None

    def create(self, name: str, limits: Limits) -> TaskCgroup | None:
        """A task cgroup with the limits applied; None if it cannot be made."""
        dirs = {key: parent / name for key, parent in self.parents.items()}
        try:
            for path in dirs.values():
                path.mkdir()
        except OSError as exc:
            log.warning(
                "cannot create task cgroup %s: %s",
                name,
                exc,
                extra={"event": "cgroup_failed"},
            )
            for path in dirs.values():
                with contextlib.suppress(OSError):
                    path.rmdir()
            return None
        # A thread that hosted a spawn goes back to the runner's own cgroup
        # (workhorse/r<pid>/../..), or below it to its directory if that is not
        # writable.
        own = {key: parent.parent.parent for key, parent in self.parents.items()}
        group = TaskCgroup(self.version, dirs, limits, homes=(own, self.parents))
        if not group.apply_limits():
            group.remove()
            return None
        return group


def _runner_dir(base: Path, version: int) -> Path:
    """This process's directory under `base`, after sweeping those of dead runners."""
    for stale in base.glob("r[0-9]*"):
        pid = stale.name[1:]
        if (
            pid.isdigit()
            and int(pid) != os.getpid()
            and not Path(f"/proc/{pid}").exists()
        ):
            for task in (d for d in stale.iterdir() if d.is_dir()):
                group = TaskCgroup(version, {"any": task}, Limits())
                group.kill()
                group.remove()
            with contextlib.suppress(OSError):
                stale.rmdir()
    mine = base / f"r{os.getpid()}"
    mine.mkdir(exist_ok=True)
    return mine


def _v1(mounts: dict[str, Path], own: dict[str, str]) -> CgroupHost | None:
    parents: dict[str, Path] = {}
    for controller, mount in mounts.items():
        base = mount / own.get(controller, "/").lstrip("/") / PARENT
        try:
            base.mkdir(exist_ok=True)
            parents[controller] = _runner_dir(base, 1)
        except OSError:
            if controller in ("memory", "pids"):
                return None
    return CgroupHost(1, parents)


def _delegate(own_dir: Path) -> bool:
    """Make memory and pids available to the cgroups below `own_dir`."""
    wanted = {"memory", "pids"}
    if not wanted <= set(_read(own_dir / "cgroup.controllers").split()):
        return False
    if wanted <= set(_read(own_dir / "cgroup.subtree_control").split()):
        return True
    if _write(own_dir / "cgroup.subtree_control", "+memory +pids"):
        return True
    # A cgroup with member processes cannot hand controllers down: move this
    # runner into a leaf of its own first (the usual delegation layout).
    leaf = own_dir / "runner"
    with contextlib.suppress(OSError):
        leaf.mkdir()
    return _write(leaf / "cgroup.procs", str(os.getpid())) and _write(
        own_dir / "cgroup.subtree_control", "+memory +pids"
    )


def _v2(own_dir: Path) -> CgroupHost | None:
    if not _delegate(own_dir):
        return None
    parent = own_dir / PARENT
    try:
        parent.mkdir(exist_ok=True)
        if not _write(parent / "cgroup.subtree_control", "+memory +pids"):
            return None
        mine = _runner_dir(parent, 2)
    except OSError:
        return None
    if not _write(mine / "cgroup.subtree_control", "+memory +pids"):
        return None
    return CgroupHost(2, {"unified": mine})


class TaskCgroup:
    """One attempt's cgroup (one directory per v1 hierarchy, one for v2).

    Args:
        homes: where a runner thread goes back to after `hosting` (one directory
            per hierarchy), in order of preference; empty: no hosting.
    """

    def __init__(
        self,
        version: int,
        dirs: dict[str, Path],
        limits: Limits,
        *,
        homes: tuple[dict[str, Path], ...] = (),
    ) -> None:
        self.version = version
        self.dirs = dirs
        self.limits = limits
        # One hierarchy is enough to list the members: a task joins all at once.
        first = dirs.get("pids") or next(iter(dirs.values()))
        self.procs_file = first / "cgroup.procs"
        # Where a process writes "0" to move itself in (`join_script`).
        name = "tasks" if version == 1 else "cgroup.procs"
        self.join_files = [str(d / name) for d in dirs.values()]
        self.homes = [[str(d / "tasks") for d in home.values()] for home in homes]

    @property
    def can_host(self) -> bool:
        """Whether `hosting` works: v1 lets single threads change cgroups."""
        return self.version == 1 and bool(self.homes)

    @contextlib.contextmanager
    def hosting(self) -> Iterator[None]:
        """Run the block with the calling thread moved into this cgroup (v1), so
        that the processes it starts are born in it.

        A thread writing "0" to `tasks` moves only itself, which the kernel does
        without the global lock that moving a process by pid takes (whose RCU
        grace period cost 5-15 ms per task here). The thread goes back to the
        runner's own cgroup afterwards. Meanwhile the runner's pid is listed as
        a member, so `pids` (and with it `kill`) leaves that pid out.
        """
        try:
            for path in self.join_files:
                _move_self(path)
            yield
        finally:
            self._leave()

    def _leave(self) -> None:
        problem: OSError | None = None
        for home in self.homes:
            try:
                for path in home:
                    _move_self(path)
            except OSError as exc:
                problem = exc
                continue
            return
        log.error(
            "a runner thread could not leave a task cgroup: %s",
            problem,
            extra={"event": "cgroup_thread_stuck"},
        )

    def _dir(self, key: str) -> Path | None:
        return self.dirs.get("unified" if self.version == 2 else key)

    def apply_limits(self) -> bool:
        """Write the limits; False if the memory or pids limit could not be set."""
        mem, pids = str(self.limits.memory), str(self.limits.processes)
        if self.version == 2:
            d = self.dirs["unified"]
            ok = _write(d / "memory.max", mem) and _write(d / "pids.max", pids)
            _write(d / "memory.swap.max", "0")
            return ok
        ok = _write(self.dirs["memory"] / "memory.limit_in_bytes", mem)
        # Equal memory+swap keeps a task from swapping past its limit.
        _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", mem)
        return ok and _write(self.dirs["pids"] / "pids.max", pids)

    def oom_kills(self) -> int:
        """Processes the kernel killed for going over the memory limit."""
        if self.version == 2:
            return _field(_read(self.dirs["unified"] / "memory.events"), "oom_kill")
        return _field(_read(self.dirs["memory"] / "memory.oom_control"), "oom_kill")

    def pids_refused(self) -> int:
        """Forks refused because the process limit was reached."""
        d = self._dir("pids")
        return 0 if d is None else _field(_read(d / "pids.events"), "max")

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process of the task so far, when accounted."""
        if self.version == 2:
            usec = _field(_read(self.dirs["unified"] / "cpu.stat"), "usage_usec")
            return usec / 1e6
        d = self.dirs.get("cpuacct")
        raw = _read(d / "cpuacct.usage").strip() if d else ""
        return int(raw) / 1e9 if raw.isdigit() else None

    def pids(self) -> set[int]:
        """Processes in the cgroup now (never this runner's own)."""
        found = {int(p) for p in _read(self.procs_file).split() if p.isdigit()}
        found.discard(os.getpid())
        return found

    def kill(self) -> None:
        """SIGKILL everything in the cgroup.

        A process with a SIGKILL pending cannot fork any more, so once every
        member seen has been signalled, only children forked just before can
        still appear: rounds go on while new members show up, without pausing.
        Members already signalled may take a moment to be gone (an exiting
        sandbox init is listed until reaped); `remove` waits for that.
        """
        if self.version == 2 and _write(self.dirs["unified"] / "cgroup.kill", "1"):
            return
        signalled: set[int] = set()
        for _ in range(KILL_ROUNDS):
            fresh = self.pids() - signalled
            if not fresh:
                return
            for pid in fresh:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            signalled |= fresh
        log.warning(
            "task cgroup still has processes after kill",
            extra={"event": "cgroup_kill_incomplete"},
        )

    def remove(self) -> None:
        """Remove the directories, waiting for the last processes to be gone."""
        for path in self.dirs.values():
            pause = REMOVE_PAUSE / 16
            for attempt in range(REMOVE_TRIES):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if attempt % 20 == 19:
                        self.kill()  # something still alive: not just exiting
                    time.sleep(pause)
                    pause = min(pause * 2, REMOVE_PAUSE)


def _move_self(path: str) -> None:
    """Write "0" to a `tasks` or `cgroup.procs` file: move the caller in."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
