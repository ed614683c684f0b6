"""Per-task sandbox with bubblewrap, and the choice of launcher for a runner.

Each attempt runs in fresh PID, mount, IPC, UTS and cgroup namespaces, and a
network namespace of its own (loopback only) unless the code enables network.
Inside it sees:

    /usr /etc /opt ...   the host's system directories, read-only
    /code                the unpacked revision, read-only; the working directory
    /task                TASK_DIR: a private tmpfs capped at the disk limit,
                         holding read-only payload.json and config.json (their
                         contents reach bubblewrap through memory file
                         descriptors: no copy of them is written on the host)
    /tmp, /dev/shm       private tmpfs mounts with the same cap
    /proc, /dev          its own process list and a minimal /dev

`--die-with-parent` ends the sandbox when the runner dies, and the whole tree ends
with its init when the command exits, so nothing outlives a task. The environment
is built from scratch (the runtime contract and the code's env vars) and handed to
bubblewrap through execve, not its argv, so values never show in `ps`.

When the runner runs as root, bubblewrap runs privileged without a user
namespace, keeps only CAP_SETUID/CAP_SETGID, and `setpriv` drops the task to an
unprivileged uid with no capabilities before the command starts (the kernel then
enforces RLIMIT_NPROC and file permissions as for any user). Otherwise bubblewrap
uses an unprivileged user namespace and the task keeps the runner's uid. Either
way the task's shell sets the rlimits before the command, unable to raise a hard
limit past the runner's own.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path

from workhorse.errors import InvalidInput, WorkhorseError
from workhorse.settings import Settings
from workhorse.worker.runners.cgroups import CgroupHost
from workhorse.worker.runners.containment import (
    ProcessGuard,
    join_script,
    limits_script,
    rlimits,
)
from workhorse.worker.runners.docker import DockerLauncher, ImageRouter
from workhorse.worker.runners.process import (
    INSIDE,
    Launch,
    Launcher,
    PlainLauncher,
    ProcessSpec,
    contract_env,
    enforcement,
    shell_argv,
)
from workhorse.worker.runners.stacks import SEARCH_PATH, require_runtime

log = logging.getLogger(__name__)
SYSTEM_DIRS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/opt",
)
PROBE_TIMEOUT = 15.0
SANDBOX_MODES = ("auto", "bwrap", "process")


def system_mounts() -> list[str]:
    """Read-only binds of the host's system directories (symlinks stay symlinks)."""
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    # /etc/resolv.conf often points into /run (systemd-resolved): keep DNS working.
    resolv = Path("/etc/resolv.conf")
    if resolv.is_symlink():
        target = str(resolv.resolve())
        if not target.startswith(SYSTEM_DIRS):
            args += ["--ro-bind-try", target, target]
    return args


class BwrapLauncher:
    """Runs each attempt in a bubblewrap sandbox.

    Args:
        bwrap: path of the bwrap executable.
        cgroups: where task cgroups go (None: rlimits only).
        uid: the uid tasks run as when the runner is root; None runs bubblewrap
            unprivileged (user namespace, the runner's own uid).
        setpriv: path of util-linux `setpriv` (needed with `uid`).
    """

    name = "bwrap"

    def __init__(
        self,
        bwrap: str,
        *,
        cgroups: CgroupHost | None,
        uid: int | None,
        setpriv: str | None = None,
    ) -> None:
        if uid is not None and (uid <= 0 or setpriv is None):
            raise InvalidInput("privileged bubblewrap needs a non-root uid and setpriv")
        self.bwrap = bwrap
        self.cgroups = cgroups
        self.uid = uid
        self.setpriv = setpriv
        self._mounts = system_mounts()

    def describe(self) -> str:
        """Banner line."""
        who = (
            f"tasks run as uid {self.uid}" if self.uid is not None else "user namespace"
        )
        how = self.cgroups.controllers if self.cgroups else "rlimits only"
        return f"bubblewrap sandbox ({who}); limits: {how}"

    def namespace_args(self, *, network: bool) -> list[str]:
        """Namespaces and privileges, before any mount."""
        if self.uid is None:
            args = ["--unshare-all", "--unshare-user", "--disable-userns"]
            if network:
                args.append("--share-net")
        else:
            args = [
                "--unshare-pid",
                "--unshare-ipc",
                "--unshare-uts",
                "--unshare-cgroup-try",
            ]
            if not network:
                args.append("--unshare-net")
            args += [
                "--cap-drop",
                "ALL",
                "--cap-add",
                "CAP_SETUID",
                "--cap-add",
                "CAP_SETGID",
            ]
        return [*args, "--die-with-parent", "--new-session", "--hostname", "workhorse"]

    def _scratch(self, size: int) -> list[str]:
        args: list[str] = []
        # Private tmpfs mounts inside the sandbox, each capped at the disk limit.
        for path in (INSIDE.tmp_dir, "/dev/shm", INSIDE.task_dir):  # noqa: S108
            args += ["--perms", "1777", "--size", str(size), "--tmpfs", path]
        return args

    def _drop(self) -> list[str]:
        if self.uid is None or self.setpriv is None:
            return []
        return [
            self.setpriv,
            "--reuid",
            _name_in("/etc/passwd", self.uid),
            "--regid",
            _name_in("/etc/group", self.uid),
            "--clear-groups",
            "--",
        ]

    def argv(
        self, spec: ProcessSpec, inputs: tuple[int, int], prologue: str = ""
    ) -> list[str]:
        """The full bwrap command line for an attempt.

        Args:
            inputs: descriptors holding the payload and the config, which
                bubblewrap copies into read-only files in /task.
            prologue: lines the task's shell runs before the command.
        """
        payload, config = (str(fd) for fd in inputs)
        return [
            self.bwrap,
            *self.namespace_args(network=spec.revision.options.network),
            *self._mounts,
            "--proc", "/proc",
            "--dev", "/dev",
            *self._scratch(spec.limits.disk),
            "--ro-bind", str(spec.revision.code_dir), INSIDE.code_dir,
            "--perms", "0444", "--ro-bind-data", payload, INSIDE.payload,
            "--perms", "0444", "--ro-bind-data", config, INSIDE.config,
            "--chdir", INSIDE.code_dir,
            "--",
            *self._drop(),
            *shell_argv(spec, INSIDE, prologue),
        ]  # fmt: skip

    def launch(self, spec: ProcessSpec) -> Launch:
        """The sandboxed command, its cgroup and its guard."""
        require_runtime(spec.revision.runtime)
        # The payload and config travel in memory: nothing of the task is
        # written on the host (bubblewrap copies them into read-only files).
        payload = _memfd("payload.json", spec.task.payload)
        try:
            config = _memfd("config.json", spec.config_text)
        except OSError:
            os.close(payload)
            raise
        cgroup = (
            self.cgroups.create(spec.cgroup_name, spec.limits) if self.cgroups else None
        )
        # The task's shell sets them, inside, without the privilege to raise a
        # hard limit.
        limits = rlimits(
            spec.limits,
            memory_cgroup=cgroup is not None,
            pids_cgroup=cgroup is not None,
            privileged=False,
        )
        notes: tuple[str, ...] = ()
        if cgroup is None:
            notes = (f"[workhorse] note: limits enforced by {enforcement(None)}",)
        guard = ProcessGuard(
            cgroup=cgroup,
            limits=spec.limits,
            sandboxed=True,
            disk_paths=(INSIDE.task_dir, INSIDE.tmp_dir),
        )
        inputs = (payload, config)
        argv = self.argv(spec, inputs, limits_script(limits))
        host = cgroup if cgroup is not None and cgroup.can_host else None
        if cgroup is not None and host is None:
            # v2: bubblewrap starts from a shell that joins the cgroup first (and
            # leaves no PWD of its own in the task's environment).
            script = join_script(cgroup) + 'unset PWD; exec "$@"'
            argv = ["/bin/sh", "-c", script, "sh", *argv]
        return Launch(
            argv=argv,
            env=contract_env(spec, INSIDE),
            cwd=Path("/"),
            guard=guard,
            notes=notes,
            host=host,
            pass_fds=inputs,
        )

    def probe(self) -> str | None:
        """Run a no-op in a sandbox made the same way; None when it works."""
        data = _memfd("probe", "ok\n")
        argv = [
            self.bwrap, *self.namespace_args(network=False), *self._mounts,
            "--proc", "/proc", "--dev", "/dev", *self._scratch(1 << 20),
            "--perms", "0444", "--ro-bind-data", str(data), INSIDE.payload,
            "--", *self._drop(), "/bin/sh", "-c",
            f"test -w /task && read -r x <{INSIDE.payload} && test $x = ok",
        ]  # fmt: skip
        try:
            out = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
                env={"PATH": SEARCH_PATH},
                pass_fds=(data,),
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{self.bwrap} failed: {exc}"
        finally:
            os.close(data)
        if out.returncode != 0:
            detail = out.stderr.strip().splitlines()
            return (
                f"bwrap does not work here: {detail[-1] if detail else out.returncode}"
            )
        return None


@functools.cache
def _name_in(path: str, ident: int) -> str:
    """How setpriv is told the id: a name that the file (which the sandbox sees
    too) gives it, else the number.

    setpriv looks any argument up as a name first; a number misses every source
    of the host's name service, loading each in turn (on Debian the systemd
    module, a library of its own), a few hundred microseconds per task. A name
    that the file resolves to the same id is found there at once.
    """
    first: dict[str, int] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            first.setdefault(fields[0], int(fields[2]))
    for name, found in first.items():
        if found == ident and name and not name.isdigit():
            return name
    return str(ident)


def _memfd(name: str, text: str) -> int:
    """An anonymous in-memory file holding `text`, positioned at its start."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    data = memoryview(text.encode())
    done = 0
    try:
        while done < len(data):
            done += os.pwrite(fd, data[done:], done)
    except OSError:
        os.close(fd)
        raise
    return fd


def bwrap_launcher(
    cgroups: CgroupHost | None, uid: int
) -> tuple[BwrapLauncher | None, str]:
    """A working bubblewrap launcher, or None and why not."""
    bwrap = shutil.which("bwrap", path=SEARCH_PATH)
    if bwrap is None:
        return None, "bubblewrap (bwrap) is not installed; run `make system-deps`"
    privileged = os.geteuid() == 0
    setpriv = shutil.which("setpriv", path=SEARCH_PATH) if privileged else None
    if privileged and setpriv is None:
        return (
            None,
            "running as root needs setpriv (util-linux) to drop to an unprivileged uid",
        )
    launcher = BwrapLauncher(
        bwrap, cgroups=cgroups, uid=uid if privileged else None, setpriv=setpriv
    )
    problem = launcher.probe()
    return (None, problem) if problem else (launcher, "")


def choose_launcher(settings: Settings) -> Launcher:
    """The launcher a runner uses: `settings.sandbox` is auto, bwrap or process.

    auto: bubblewrap when it works on this host, else a plain child process (the
    runner's banner and every task log say so). Tasks of codes that name a Docker
    image run in a container when a Docker engine is reachable.

    Raises:
        WorkhorseError: bwrap was required but cannot run here.
    """
    mode = settings.sandbox
    if mode not in SANDBOX_MODES:
        raise InvalidInput(
            f"sandbox must be one of {', '.join(SANDBOX_MODES)}, got {mode!r}"
        )
    cgroups = CgroupHost.detect()
    base: Launcher
    if mode == "process":
        base = PlainLauncher(cgroups, reason="turned off by WORKHORSE_SANDBOX=process")
    else:
        launcher, problem = bwrap_launcher(cgroups, settings.sandbox_uid)
        if launcher is not None:
            base = launcher
        elif mode == "bwrap":
            raise WorkhorseError(f"WORKHORSE_SANDBOX=bwrap, but {problem}")
        else:
            log.warning(
                "code packages run without a sandbox: %s",
                problem,
                extra={"event": "sandbox_unavailable"},
            )
            base = PlainLauncher(cgroups, reason=problem)
    return ImageRouter(base, DockerLauncher(cgroups=cgroups, uid=settings.sandbox_uid))
