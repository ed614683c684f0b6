"""Launchers without running anything: bwrap and docker command lines, the task's
environment, and cgroup setup against a fake cgroup filesystem."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from workhorse.domain.limits import MIB, Limits, code_options
from workhorse.domain.task import Task, TaskStatus
from workhorse.worker.runners.cgroups import CgroupHost
from workhorse.worker.runners.docker import DockerLauncher
from workhorse.worker.runners.process import ProcessSpec, Revision
from workhorse.worker.runners.sandbox import BwrapLauncher


def make_task(**overrides: Any) -> Task:
    values: dict[str, Any] = {f.name: None for f in fields(Task)}
    values.update(
        id="t1",
        project_id="p",
        code_name="hello",
        kind="package",
        code_revision=3,
        payload="{}",
        status=TaskStatus.RUNNING,
        priority=0,
        run_at=0.0,
        timeout=60,
        cluster="default",
        retries=0,
        retries_delay=0,
        backoff=False,
        attempt=1,
        lost_count=0,
        created_at=0.0,
        cancel_requested=False,
    )
    values.update(overrides)
    return Task(**values)


def make_spec(tmp_path: Path, **options: Any) -> ProcessSpec:
    revision = Revision(
        code_dir=tmp_path / "code",
        command="python3 main.py",
        runtime="python",
        options=code_options(**options),
    )
    task_dir = tmp_path / "work" / "task"
    return ProcessSpec(
        make_task(),
        revision,
        tmp_path / "work",
        task_dir,
        task_dir / "payload.json",
        task_dir / "config.json",
    )


def privileged() -> BwrapLauncher:
    return BwrapLauncher(
        "/usr/bin/bwrap", cgroups=None, uid=65534, setpriv="/usr/bin/setpriv"
    )


def test_privileged_sandbox_drops_to_the_task_uid_with_no_network(
    tmp_path: Path,
) -> None:
    argv = privileged().argv(make_spec(tmp_path, limits={"disk": "10M"}))
    assert "--unshare-net" in argv
    assert "--unshare-pid" in argv
    assert "--die-with-parent" in argv
    assert "--new-session" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    command = argv[argv.index("--") + 1 :]
    assert command[:4] == ["/usr/bin/setpriv", "--reuid", "65534", "--regid"]
    assert command[command.index("--") + 1 : command.index("--") + 3] == [
        "/bin/sh",
        "-c",
    ]
    tmpfs = argv.index("/task") - 1
    assert argv[tmpfs - 4 : tmpfs + 1] == [
        "--perms",
        "1777",
        "--size",
        str(10 * MIB),
        "--tmpfs",
    ]
    code = argv.index("/code")
    assert argv[code - 2 : code] == ["--ro-bind", str(tmp_path / "code")]


def test_network_option_keeps_the_host_network(tmp_path: Path) -> None:
    assert "--unshare-net" not in privileged().argv(make_spec(tmp_path, network=True))
    unprivileged = BwrapLauncher("/usr/bin/bwrap", cgroups=None, uid=None)
    argv = unprivileged.argv(make_spec(tmp_path, network=True))
    assert argv[1:5] == [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--share-net",
    ]
    assert "--unshare-all" in unprivileged.argv(make_spec(tmp_path))
    assert "--share-net" not in unprivileged.argv(make_spec(tmp_path))


def test_the_task_sees_sandbox_paths_and_only_its_own_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKHORSE_DATABASE_URL", "postgresql://secret@db/x")
    spec = make_spec(tmp_path, env={"GREETING": "hi", "TASK_DIR": "/elsewhere"})
    (tmp_path / "code").mkdir()
    launch = privileged().launch(spec)
    assert launch.env["PAYLOAD_FILE"] == "/task/payload.json"
    assert launch.env["TASK_DIR"] == "/task"  # the contract wins over the code's env
    assert launch.env["CONFIG_FILE"] == "/task/config.json"
    assert launch.env["GREETING"] == "hi"
    assert launch.env["PYTHONUNBUFFERED"] == "1"
    assert "WORKHORSE_DATABASE_URL" not in launch.env
    assert not any("secret@db" in arg or "GREETING" in arg for arg in launch.argv)
    assert launch.argv[-8:] == [
        "-payload",
        "/task/payload.json",
        "-id",
        "t1",
        "-d",
        "/task",
        "-config",
        "/task/config.json",
    ]


def test_privileged_mode_refuses_root_as_the_task_uid() -> None:
    with pytest.raises(Exception, match="non-root uid"):
        BwrapLauncher("/usr/bin/bwrap", cgroups=None, uid=0, setpriv="/usr/bin/setpriv")


def test_docker_run_carries_the_limits_and_keeps_env_values_off_the_command_line(
    tmp_path: Path,
) -> None:
    spec = make_spec(
        tmp_path,
        env={"TOKEN": "s3cret"},
        image="python:3.12-slim",
        limits={"memory": "64M", "processes": 64},
    )
    launch = DockerLauncher("docker").launch(spec)
    argv = launch.argv
    assert argv[argv.index("--network") + 1] == "none"
    assert argv[argv.index("--memory") + 1] == str(64 * MIB)
    assert argv[argv.index("--memory-swap") + 1] == str(64 * MIB)
    assert argv[argv.index("--pids-limit") + 1] == "64"
    assert "python:3.12-slim" in argv
    assert "TOKEN" in argv
    assert not any("s3cret" in arg for arg in argv)
    assert launch.env["TOKEN"] == "s3cret"


def test_cgroup_v1_limits_are_written_under_the_runner_cgroup(tmp_path: Path) -> None:
    (tmp_path / "memory" / "svc").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    mounts = (
        f"cgroup {tmp_path}/memory cgroup rw,relatime,memory 0 0\n"
        f"cgroup {tmp_path}/pids cgroup rw,relatime,pids 0 0\n"
    )
    host = CgroupHost.detect(mounts=mounts, own="8:pids:/\n4:memory:/svc\n0::/\n")
    assert host is not None
    assert host.version == 1
    group = host.create("t1-1", Limits(memory=64 * MIB, processes=64))
    assert group is not None
    runner = f"r{os.getpid()}"
    mem = tmp_path / "memory" / "svc" / "workhorse" / runner / "t1-1"
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * MIB)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(64 * MIB)
    assert (
        tmp_path / "pids" / "workhorse" / runner / "t1-1" / "pids.max"
    ).read_text() == "64"
    assert group.oom_kills() == 0
    (mem / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    )
    assert group.oom_kills() == 2


def test_cgroup_v2_delegation_enables_memory_and_pids(tmp_path: Path) -> None:
    own = tmp_path / "svc"
    own.mkdir()
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    host = CgroupHost.detect(
        mounts=f"cgroup2 {tmp_path} cgroup2 rw 0 0\n", own="0::/svc\n"
    )
    assert host is not None
    assert host.version == 2
    assert (own / "workhorse" / "cgroup.subtree_control").read_text() == "+memory +pids"
    group = host.create("t1-1", Limits(memory=64 * MIB, processes=64))
    assert group is not None
    d = own / "workhorse" / f"r{os.getpid()}" / "t1-1"
    assert (d / "memory.max").read_text() == str(64 * MIB)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "64"
    (d / "pids.events").write_text("max 5\n")
    (d / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 1\n")
    assert group.pids_refused() == 5
    assert group.cpu_seconds() == 2.5


def test_no_usable_cgroup_means_none(tmp_path: Path) -> None:
    assert CgroupHost.detect(mounts="", own="") is None
    mounts = f"cgroup2 {tmp_path} cgroup2 rw 0 0\n"
    (tmp_path / "cgroup.controllers").write_text("cpu io\n")
    assert CgroupHost.detect(mounts=mounts, own="0::/\n") is None
