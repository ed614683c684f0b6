"""Docker containers for codes that name an image, where a Docker engine is reachable.

The container gets the same contract and limits as the bubblewrap sandbox: the
revision read-only at /code (the working directory), TASK_DIR a tmpfs at /task
with read-only payload.json and config.json, a private /tmp, no network unless
the code enables it, an unprivileged user, no capabilities, no new privileges,
--memory (swap included), --pids-limit and rlimits through --ulimit. The docker
CLI runs as the attempt's leader process; stopping it goes through `docker kill`
because the container is the engine's child, not ours. Bind mounts name host
paths, so the engine must run on the runner's host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time

from workhorse.domain.limits import format_size
from workhorse.worker.runners.cgroups import CgroupHost
from workhorse.worker.runners.process import (
    INSIDE,
    Launch,
    Launcher,
    ProcessSpec,
    contract_env,
    shell_argv,
)

CLI_TIMEOUT = 30.0
# Runner variables the docker CLI itself may need; they never reach the container.
CLI_VARS = (
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
)
# A missing engine is looked for again after this long.
RECHECK_SECONDS = 60.0


def _docker(
    docker: str, *args: str, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [docker, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def engine_version(docker: str = "docker") -> str | None:
    """The engine's version when one answers, else None."""
    try:
        out = _docker(docker, "info", "--format", "{{.ServerVersion}}", timeout=10.0)
    except (OSError, subprocess.SubprocessError):
        return None
    version = out.stdout.strip()
    return version if out.returncode == 0 and version else None


class DockerGuard:
    """Holds one container: polite and hard stops, OOM detection, removal."""

    def __init__(self, docker: str, name: str, memory: int) -> None:
        self.docker = docker
        self.name = name
        self.memory = memory
        self.proc: subprocess.Popen[bytes] | None = None

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """The `docker run` process has started."""
        self.proc = proc

    def breach(self) -> str | None:
        """After the container ended: whether the engine killed it for memory."""
        if self.proc is None or self.proc.poll() is None:
            return (
                None  # the engine enforces limits itself; read the verdict at the end
            )
        try:
            out = _docker(
                self.docker, "inspect", "-f", "{{.State.OOMKilled}}", self.name
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.stdout.strip() == "true":
            return f"memory limit ({format_size(self.memory)})"
        return None

    def terminate(self) -> None:
        """SIGTERM to the container's processes (without blocking the caller, which
        may be the runner's supervisor thread)."""
        threading.Thread(
            target=_quiet,
            args=(self.docker, "kill", "--signal", "TERM", self.name),
            daemon=True,
        ).start()

    def kill(self) -> None:
        """SIGKILL the container and the CLI."""
        if self.proc is not None and self.proc.poll() is None:
            _quiet(self.docker, "kill", self.name)
            self.proc.kill()

    def close(self) -> None:
        """Remove the container."""
        self.kill()
        _quiet(self.docker, "rm", "-f", self.name)


def _quiet(docker: str, *args: str) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        _docker(docker, *args)


class DockerLauncher:
    """`docker run` with the runtime contract and the code's limits."""

    name = "docker"

    def __init__(
        self,
        docker: str = "docker",
        *,
        cgroups: CgroupHost | None = None,
        uid: int = 65534,
    ) -> None:
        self.docker = docker
        self.cgroups = cgroups
        self.uid = uid
        self._version: str | None = None
        self._checked = -RECHECK_SECONDS
        self._lock = threading.Lock()

    def available(self) -> bool:
        """Whether an engine answers (checked at most once a minute while missing)."""
        with self._lock:
            now = time.monotonic()
            if self._version is None and now - self._checked >= RECHECK_SECONDS:
                self._checked = now
                self._version = engine_version(self.docker)
            return self._version is not None

    def describe(self) -> str:
        """Banner line."""
        return f"docker engine {self._version}" if self._version else "no docker engine"

    def argv(self, spec: ProcessSpec, name: str, env: dict[str, str]) -> list[str]:
        """The `docker run` command line (env values travel in the CLI's env)."""
        lim = spec.limits
        opts = spec.revision.options
        scratch = f"rw,size={lim.disk},mode=1777"
        return [
            self.docker, "run", "--name", name, "--init", "--interactive=false",
            "--network", "bridge" if opts.network else "none",
            "--memory", str(lim.memory), "--memory-swap", str(lim.memory),
            "--pids-limit", str(lim.processes),
            "--ulimit", f"cpu={lim.cpu}:{lim.cpu + 1}",
            "--ulimit", f"nofile={lim.open_files}:{lim.open_files}",
            "--ulimit", f"fsize={lim.disk}:{lim.disk}",
            "--read-only", "--tmpfs", f"{INSIDE.task_dir}:{scratch}",
            "--tmpfs", f"/tmp:{scratch}",  # noqa: S108 - the container's own
            "-v", f"{spec.revision.code_dir}:{INSIDE.code_dir}:ro",
            "-v", f"{spec.payload}:{INSIDE.payload}:ro",
            "-v", f"{spec.config}:{INSIDE.config}:ro",
            "-w", INSIDE.code_dir, "--user", f"{self.uid}:{self.uid}",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            *(arg for key in sorted(env) for arg in ("-e", key)),
            str(opts.image),
            *shell_argv(spec, INSIDE),
        ]  # fmt: skip

    def launch(self, spec: ProcessSpec) -> Launch:
        """A container for the attempt."""
        spec.write_files()
        name = f"workhorse-{spec.cgroup_name}"
        env = contract_env(spec, INSIDE)
        cli_env = {
            k: os.environ[k] for k in CLI_VARS if k in os.environ and k not in env
        }
        cli_env.update(env)
        return Launch(
            argv=self.argv(spec, name, env),
            env=cli_env,
            cwd=spec.work_dir,
            guard=DockerGuard(self.docker, name, spec.limits.memory),
        )


class ImageRouter:
    """The runner's launcher: codes with an `image` go to Docker when an engine
    answers; everything else (and image codes without an engine, with a note in
    the task log) goes to the base launcher."""

    def __init__(self, base: Launcher, docker: DockerLauncher) -> None:
        self.base = base
        self.docker = docker
        self.name = base.name

    def describe(self) -> str:
        """Banner line."""
        return self.base.describe()

    def launch(self, spec: ProcessSpec) -> Launch:
        """Route by the revision's image."""
        image = spec.revision.options.image
        if image is None:
            return self.base.launch(spec)
        if self.docker.available():
            return self.docker.launch(spec)
        launch = self.base.launch(spec)
        note = (
            f"[workhorse] note: image {image!r} requested, but no Docker engine is "
            f"reachable from this runner; running in {self.base.name} instead"
        )
        return dataclasses.replace(launch, notes=(*launch.notes, note))
