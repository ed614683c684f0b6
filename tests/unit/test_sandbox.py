"""Launchers without starting a task: bwrap and docker command lines, the task's
environment, the shell lines that set rlimits, and cgroup setup against a fake
cgroup filesystem."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.factories import package_task
from workhorse.domain.limits import MIB, Limits, code_options
from workhorse.domain.task import Task
from workhorse.worker.runners.cgroups import CgroupHost, TaskCgroup
from workhorse.worker.runners.containment import limits_script, rlimits
from workhorse.worker.runners.docker import DockerLauncher
from workhorse.worker.runners.process import ProcessSpec, Revision
from workhorse.worker.runners.sandbox import BwrapLauncher, _name_in


def make_task(**overrides: Any) -> Task:
    return package_task(**{"code_revision": 3, **overrides})


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
    argv = privileged().argv(make_spec(tmp_path, limits={"disk": "10M"}), (7, 8))
    assert "--unshare-net" in argv
    assert "--unshare-pid" in argv
    assert "--die-with-parent" in argv
    assert "--new-session" in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    command = argv[argv.index("--") + 1 :]
    assert command[:2] == ["/usr/bin/setpriv", "--reuid"]
    assert command[2] == _name_in("/etc/passwd", 65534)
    assert command[3:5] == ["--regid", _name_in("/etc/group", 65534)]
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
    # The payload and the config come from descriptors, read-only.
    payload = argv.index("/task/payload.json")
    assert argv[payload - 4 : payload] == ["--perms", "0444", "--ro-bind-data", "7"]
    config = argv.index("/task/config.json")
    assert argv[config - 4 : config] == ["--perms", "0444", "--ro-bind-data", "8"]


def test_network_option_keeps_the_host_network(tmp_path: Path) -> None:
    fds = (7, 8)
    assert "--unshare-net" not in privileged().argv(
        make_spec(tmp_path, network=True), fds
    )
    unprivileged = BwrapLauncher("/usr/bin/bwrap", cgroups=None, uid=None)
    argv = unprivileged.argv(make_spec(tmp_path, network=True), fds)
    assert argv[1:5] == [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--share-net",
    ]
    assert "--unshare-all" in unprivileged.argv(make_spec(tmp_path), fds)
    assert "--share-net" not in unprivileged.argv(make_spec(tmp_path), fds)


def test_the_task_sees_sandbox_paths_and_only_its_own_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKHORSE_DATABASE_URL", "postgresql://secret@db/x")
    spec = make_spec(
        tmp_path,
        env={"GREETING": "hi", "TASK_DIR": "/elsewhere"},
        config='{"k": 1}',
    )
    (tmp_path / "code").mkdir()
    launch = privileged().launch(spec)
    payload, config = launch.pass_fds
    try:
        assert os.pread(payload, 100, 0) == b"{}"
        assert os.pread(config, 100, 0) == b'{"k": 1}'
    finally:
        os.close(payload)
        os.close(config)
    assert not spec.work_dir.exists()  # nothing of the task on the host
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


def test_the_tasks_shell_sets_the_rlimits_in_ulimit_units() -> None:
    limits = Limits(memory=64 * MIB + 1, cpu=10, open_files=64, disk=MIB + 1)
    wanted = rlimits(limits, memory_cgroup=False, pids_cgroup=True, privileged=False)
    script = limits_script(wanted)
    assert "ulimit -t 11 && ulimit -S -t 10" in script
    assert "ulimit -f 2049 " in script  # 512-byte blocks, rounded up
    out = subprocess.run(
        ["/bin/sh", "-c", script + "cat /proc/self/limits"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {line[:26].strip(): line[26:].split()[:2] for line in out.splitlines()}
    assert rows["Max cpu time"] == ["10", "11"]
    assert rows["Max file size"] == [str(2049 * 512)] * 2
    assert rows["Max open files"] == ["64", "64"]
    assert rows["Max core file size"] == ["0", "0"]
    assert rows["Max address space"] == [str((64 * MIB + 1024) // 1024 * 1024)] * 2


def test_limits_the_tasks_shell_cannot_raise_are_capped() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    limits = Limits(open_files=hard + 10)
    wanted = rlimits(limits, memory_cgroup=True, pids_cgroup=True, privileged=False)
    assert (resource.RLIMIT_NOFILE, hard, hard) in wanted


def fake_v1(tmp_path: Path) -> CgroupHost:
    (tmp_path / "memory" / "svc").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    mounts = (
        f"cgroup {tmp_path}/memory cgroup rw,relatime,memory 0 0\n"
        f"cgroup {tmp_path}/pids cgroup rw,relatime,pids 0 0\n"
    )
    host = CgroupHost.detect(mounts=mounts, own="8:pids:/\n4:memory:/svc\n0::/\n")
    assert host is not None
    return host


def test_a_runner_thread_hosts_the_spawn_and_goes_back_home(tmp_path: Path) -> None:
    group = fake_v1(tmp_path).create("t1-1", Limits())
    assert group is not None
    assert group.can_host
    runner = f"r{os.getpid()}"
    joined = [
        tmp_path / "memory" / "svc" / "workhorse" / runner / "t1-1" / "tasks",
        tmp_path / "pids" / "workhorse" / runner / "t1-1" / "tasks",
    ]
    home = [tmp_path / "memory" / "svc" / "tasks", tmp_path / "pids" / "tasks"]
    for path in joined + home:
        path.touch()  # the kernel's files exist in every cgroup
    with group.hosting():
        # Writing "0" moves the writing thread (here: a plain file gets it).
        assert [p.read_text() for p in joined] == ["0", "0"]
        assert [p.read_text() for p in home] == ["", ""]
    assert [p.read_text() for p in home] == ["0", "0"]


def test_kill_signals_each_member_once_and_never_the_runner(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "60"])
    try:
        group = TaskCgroup(1, {"pids": tmp_path}, Limits())
        # A member that stays listed (as an exiting sandbox init does until it
        # is reaped), and this process (a thread hosting a spawn).
        (tmp_path / "cgroup.procs").write_text(f"{os.getpid()}\n{child.pid}\n")
        group.kill()
        assert child.wait(10) == -9
    finally:
        child.kill()
        child.wait()


def test_setpriv_gets_a_name_the_sandboxs_files_resolve_to_the_same_id(
    tmp_path: Path,
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "root:x:0:0::/root:/bin/sh\n"
        "ghost:x:12:12::/:/bin/false\n"
        "ghost:x:65534:65534::/:/bin/false\n"  # a name's first entry wins
        "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
    )
    assert _name_in(str(passwd), 65534) == "nobody"
    assert _name_in(str(passwd), 4242) == "4242"
    assert _name_in(str(tmp_path / "missing"), 65534) == "65534"


def fake_v2(tmp_path: Path) -> CgroupHost:
    own = tmp_path / "svc"
    own.mkdir()
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    host = CgroupHost.detect(
        mounts=f"cgroup2 {tmp_path} cgroup2 rw 0 0\n", own="0::/svc\n"
    )
    assert host is not None
    return host


@pytest.mark.parametrize("version", [1, 2])
def test_the_sandbox_starts_inside_the_cgroup(tmp_path: Path, version: int) -> None:
    host = fake_v1(tmp_path) if version == 1 else fake_v2(tmp_path)
    launcher = BwrapLauncher(
        "/usr/bin/bwrap", cgroups=host, uid=65534, setpriv="/usr/bin/setpriv"
    )
    spec = make_spec(tmp_path)
    launch = launcher.launch(spec)
    for fd in launch.pass_fds:
        os.close(fd)
    if version == 1:
        # Born in it: the runner thread that starts bubblewrap moves in around it.
        assert launch.host is not None
        assert launch.argv[0] == "/usr/bin/bwrap"
    else:
        # A shell moves itself in, then becomes bubblewrap.
        assert launch.host is None
        assert launch.argv[:2] == ["/bin/sh", "-c"]
        procs = tmp_path / "svc" / "workhorse" / f"r{os.getpid()}" / "t1-1-"
        assert f"echo 0 >{procs}" in launch.argv[2]
        assert launch.argv[4] == "/usr/bin/bwrap"
