"""Code packages end to end on both backends: revisions, blob storage, pause and
resume, download, stats, bad uploads, logs, and the launcher a runner picks."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from workhorse import App, TaskStatus
from workhorse.app import TaskHandle
from workhorse.cli.main import cli
from workhorse.client import CodePackage, zip_directory
from workhorse.domain.limits import MIB
from workhorse.errors import InvalidInput, NotFound
from workhorse.settings import Settings
from workhorse.worker.worker import Worker

WAIT = 30.0


def package(root: Path, script: str, name: str = "pkg") -> Path:
    src = root / name
    src.mkdir(exist_ok=True)
    (src / "run.sh").write_text(script)
    return src


def wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll a condition we cannot subscribe to, with a deadline."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


@pytest.fixture
def blob_app(settings: Settings, tmp_path: Path) -> Iterator[App]:
    """An app whose archives over 200 bytes go to a blob directory."""
    configured = dataclasses.replace(
        settings, blob_dir=tmp_path / "blobs", blob_threshold_bytes=200
    )
    a = App(settings=configured)
    yield a
    a.close()


def test_each_upload_is_a_new_revision(app: App, tmp_path: Path) -> None:
    src = package(tmp_path, "echo one\n")
    first = app.client.upload_directory(
        src, CodePackage(name="rev", command="sh run.sh")
    )
    (src / "run.sh").write_text("echo two\n")
    second = app.client.upload_directory(
        src, CodePackage(name="rev", command="sh run.sh", memory="64M")
    )
    assert (first["revision"], second["revision"]) == (1, 2)
    newest, oldest = app.client.revisions("rev")
    assert (newest["revision"], oldest["revision"]) == (2, 1)
    archive = zip_directory(src)
    assert newest["checksum"] == hashlib.sha256(archive).hexdigest()
    assert newest["size"] == len(archive)
    assert newest["created_at"] >= oldest["created_at"] > 0
    assert newest["options"].limits == {"memory": 64 * MIB}
    assert oldest["options"].limits == {}


def test_a_task_keeps_its_revision_and_limits_when_a_newer_one_arrives(
    blob_app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = package(tmp_path, 'echo "one $TASK_DIR"\n' + "# padding\n" * 40)
    blob_app.client.upload_directory(
        src, CodePackage(name="keep", command="sh run.sh", disk="2M")
    )
    first = blob_app.queue("keep")
    (src / "run.sh").write_text("echo two\n")
    blob_app.client.upload_directory(src, CodePackage(name="keep", command="sh run.sh"))
    blob_app.client.forget_code("keep")
    second = blob_app.queue("keep")
    start_worker(blob_app)
    assert first.wait(WAIT).status == TaskStatus.COMPLETE, first.error
    assert second.wait(WAIT).status == TaskStatus.COMPLETE, second.error
    assert first.log.splitlines()[-1].startswith("one ")
    assert second.log.splitlines()[-1] == "two"
    assert (first.task.code_revision, second.task.code_revision) == (1, 2)


def test_large_archives_live_in_the_blob_dir_and_runners_fetch_them(
    blob_app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = package(tmp_path, "echo from-blob\n")
    (src / "data.bin").write_bytes(bytes(range(256)) * 8)
    blob_app.client.upload_directory(src, CodePackage(name="big", command="sh run.sh"))
    (revision,) = blob_app.client.revisions("big")
    assert revision["blob_path"]
    blob = tmp_path / "blobs" / revision["blob_path"]
    assert blob.is_file()
    row = blob_app.storage.run(lambda tx: tx.codes.get_revision("default", "big", 1))
    assert row is not None
    assert row["archive"] is None
    start_worker(blob_app, cache_dir=tmp_path / "other-host-cache")
    task = blob_app.queue("big").wait(WAIT)
    assert task.status == TaskStatus.COMPLETE, task.error
    assert task.log == "from-blob\n"
    assert blob_app.client.download("big") == (1, zip_directory(src))
    blob_app.client.delete_code("big")
    assert not blob.exists()


def test_download_returns_each_revision_as_uploaded(app: App, tmp_path: Path) -> None:
    src = package(tmp_path, "echo v1\n")
    v1 = zip_directory(src)
    app.client.upload(CodePackage(name="dl", command="sh run.sh"), v1)
    (src / "run.sh").write_text("echo v2\n")
    app.client.upload_directory(src, CodePackage(name="dl", command="sh run.sh"))
    assert app.client.download("dl", 1) == (1, v1)
    assert app.client.download("dl") == (2, zip_directory(src))
    with pytest.raises(NotFound, match="no revision 7"):
        app.client.download("dl", 7)


def test_pause_keeps_tasks_queued_and_resume_runs_every_one(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    app.client.upload_directory(
        package(tmp_path, "echo paused-ran\n", "p"),
        CodePackage(name="held", command="sh run.sh"),
    )
    app.client.upload_directory(
        package(tmp_path, "echo other\n", "o"),
        CodePackage(name="free", command="sh run.sh"),
    )
    app.client.set_paused("held", True)
    held = [app.queue("held", f'{{"n": {i}}}') for i in range(5)]
    start_worker(app)
    # The runner is claiming: another code's task finishes...
    assert app.queue("free").wait(WAIT).status == TaskStatus.COMPLETE
    # ...while the paused code's tasks all still wait.
    assert {h.status for h in held} == {TaskStatus.QUEUED}
    assert app.client.code_stats("held")["queued"] == 5
    app.client.set_paused("held", False)
    for h in held:
        assert h.wait(WAIT).status == TaskStatus.COMPLETE
        assert h.log == "paused-ran\n"
    stats = app.client.code_stats("held")
    assert stats["complete"] == 5
    assert sum(stats.values()) == 5


def test_code_stats_count_tasks_per_status(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = package(tmp_path, 'test "$(cat "$PAYLOAD_FILE")" = ok\n')
    app.client.upload_directory(src, CodePackage(name="st", command="sh run.sh"))
    tasks = [app.queue("st", p) for p in ("ok", "ok", "bad")]
    start_worker(app)
    for t in tasks:
        t.wait(WAIT)
    stats = app.client.code_stats("st")
    assert (stats["complete"], stats["error"], stats["queued"]) == (2, 1, 0)


def _zip(entries: dict[str, bytes], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if link:
            info = zipfile.ZipInfo(link)
            info.external_attr = 0o120777 << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("package_", "archive", "message"),
    [
        (
            CodePackage(name="bad", command="sh run.sh"),
            _zip({"../x.sh": b"x"}),
            "outside",
        ),
        (
            CodePackage(name="bad", command="sh run.sh"),
            _zip({}, link="passwd"),
            "symlink",
        ),
        (CodePackage(name="bad", command=""), _zip({"run.sh": b""}), "needs a command"),
        (
            CodePackage(name="bad", command="x", runtime="cobol"),
            _zip({}),
            "unknown runtime",
        ),
        (
            CodePackage(name="bad", command="x"),
            _zip({"a": bytes(4000)}),
            "the limit is",
        ),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    blob_app: App, tmp_path: Path, package_: CodePackage, archive: bytes, message: str
) -> None:
    small = App(settings=dataclasses.replace(blob_app.settings, max_package_bytes=3000))
    try:
        with pytest.raises(InvalidInput, match=message):
            small.client.upload(package_, archive)
        assert small.client.codes() == []
        assert not (tmp_path / "blobs").exists() or not any(
            (tmp_path / "blobs").rglob("*.zip")
        )
    finally:
        small.close()


def test_a_symlink_out_of_a_package_directory_is_refused(
    app: App, tmp_path: Path
) -> None:
    src = package(tmp_path, "cat passwd\n")
    (src / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(InvalidInput, match="symlink out of the package"):
        app.client.upload_directory(src, CodePackage(name="link", command="sh run.sh"))
    assert app.client.codes() == []


def test_output_streams_while_the_task_runs(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = package(tmp_path, "echo started\nexec sleep 60\n")
    app.client.upload_directory(src, CodePackage(name="slow", command="sh run.sh"))
    start_worker(app)
    task = app.queue("slow")
    wait_for(
        lambda: "started" in "".join(t for _, t in app.client.log_since(task.id, 0))
    )
    assert task.status == TaskStatus.RUNNING
    task.cancel()
    assert task.wait(WAIT).status == TaskStatus.CANCELLED


def test_the_log_is_capped_with_a_marker(
    settings: Settings, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    capped = App(settings=dataclasses.replace(settings, max_log_bytes=1000))
    try:
        src = package(
            tmp_path, "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done\n"
        )
        capped.client.upload_directory(
            src, CodePackage(name="loud", command="sh run.sh")
        )
        start_worker(capped)
        task = capped.queue("loud").wait(WAIT)
        assert task.status == TaskStatus.COMPLETE
        log = task.log
        assert log.startswith("line-0\nline-1\n")
        assert log.endswith("[workhorse: log truncated at 1000 bytes]\n")
        assert len(log.encode()) < 1100
    finally:
        capped.close()


def test_a_missing_runtime_is_a_clear_error(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    if shutil.which("ruby"):
        pytest.skip("ruby is installed here")
    app.client.upload_directory(
        package(tmp_path, "puts 1\n"),
        CodePackage(name="rb", command="ruby run.sh", runtime="ruby"),
    )
    start_worker(app)
    task = app.queue("rb").wait(WAIT)
    assert task.status == TaskStatus.ERROR
    assert "runtime 'ruby' is not available on this runner" in (task.error or "")


def test_without_a_sandbox_every_task_log_says_so(
    settings: Settings, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    plain = App(settings=dataclasses.replace(settings, sandbox="process"))
    try:
        plain.client.upload_directory(
            package(tmp_path, "echo hi\n"),
            CodePackage(name="plain", command="sh run.sh"),
        )
        worker = start_worker(plain)
        assert worker.process.launcher.name == "process"
        task: TaskHandle = plain.queue("plain").wait(WAIT)
        first, *rest = task.log.splitlines()
        assert first.startswith("[workhorse] WARNING: not sandboxed")
        assert rest == ["hi"]
    finally:
        plain.close()


def test_cli_uploads_shows_lists_downloads_and_counts(
    database_url: str, tmp_path: Path
) -> None:
    src = package(tmp_path, "echo hi\n")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--database-url", database_url, *args])
        assert result.exit_code == 0, result.output
        return result.output

    run(
        "code",
        "upload",
        str(src),
        "--name",
        "c",
        "--command",
        "sh run.sh",
        "--memory",
        "64M",
        "--processes",
        "32",
        "--env",
        "K=v",
        "--no-network",
    )
    run(
        "code",
        "upload",
        str(src),
        "--name",
        "c",
        "--command",
        "sh run.sh",
        "--image",
        "alpine:3.20",
        "--network",
    )
    shown = run("code", "show", "c")
    assert "alpine:3.20" in shown
    assert "network  on" in shown
    assert "2" in run("code", "revisions", "c")
    out = tmp_path / "c1.zip"
    run("code", "download", "c", "--revision", "1", "-o", str(out))
    assert out.read_bytes() == zip_directory(src)
    assert '"queued": 0' in run("code", "stats", "c", "--json")
    bad = runner.invoke(
        cli,
        [
            "--database-url",
            database_url,
            "code",
            "upload",
            str(src),
            "--name",
            "d",
            "--command",
            "x",
            "--memory",
            "lots",
        ],
    )
    assert bad.exit_code != 0
    assert "not a size" in bad.output
    assert "python" in run("stacks")


def test_a_relative_cache_dir_works(
    app: App,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    src = package(tmp_path, "echo relative-ok\n")
    app.client.upload_directory(src, CodePackage(name="rel", command="sh run.sh"))
    start_worker(app, cache_dir=Path("var") / "cache")
    task = app.queue("rel").wait(WAIT)
    assert task.status == TaskStatus.COMPLETE, task.log
    assert task.log == "relative-ok\n"
