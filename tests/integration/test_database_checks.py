"""`workhorse check` finds real damage in real files; `workhorse backup` copies a
database that is being written to; damage met at run time is reported as such."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from workhorse.api.errors import response_for
from workhorse.cli.main import cli
from workhorse.errors import StorageCorrupt
from workhorse.queues import MessageQueues
from workhorse.settings import Settings
from workhorse.storage import open_storage


def run_cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--database-url", url, *args])
    return result.exit_code, result.output


def check(url: str, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    code, output = run_cli(url, "check", "--json", *args)
    return code, {f["check"]: f for f in json.loads(output)}


def sqlite_db(tmp_path: Path, messages: int = 600) -> tuple[str, Path]:
    """A database holding `messages` messages in queue `orders`, checkpointed into
    its main file and closed."""
    path = tmp_path / "wh.db"
    url = f"sqlite:///{path}"
    storage = open_storage(Settings(database_url=url), migrate=True)
    queues = MessageQueues(storage, project_id="p")
    for start in range(0, messages, 100):
        queues.post(
            "orders", [f"order {i:06d} " + "x" * 200 for i in range(start, start + 100)]
        )
    storage.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return url, path


def damage_root_page(path: Path, name: str) -> None:
    """Overwrite the b-tree page header of table or index `name`'s root page."""
    conn = sqlite3.connect(path)
    (root,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)
    ).fetchone()
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xff" * 12)


def test_a_healthy_sqlite_database_passes(tmp_path: Path) -> None:
    url, _ = sqlite_db(tmp_path, messages=100)
    for args in ((), ("--quick",)):
        code, found = check(url, *args)
        assert code == 0
        assert {f["level"] for f in found.values()} == {"ok"}, found
        assert "up to date" in found["schema"]["detail"]


def test_a_postgres_database_passes(pg_url: str) -> None:
    open_storage(Settings(database_url=pg_url), migrate=True).close()
    code, found = check(pg_url)
    assert code == 0
    assert found["connect"]["level"] == "ok"
    assert found["schema"]["level"] == "ok"
    assert found["data checksums"]["level"] in ("ok", "warning")


def test_a_damaged_page_is_found_by_check_and_reported_at_run_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url, path = sqlite_db(tmp_path)
    damage_root_page(path, "mq_messages")
    code, found = check(url)
    assert code == 1
    assert found["integrity_check"]["level"] == "error"
    code, output = run_cli(url, "check")
    assert code == 1
    assert "integrity_check" in output
    assert "error" in output

    storage = open_storage(Settings(database_url=url))
    try:
        queues = MessageQueues(storage, project_id="p")
        with pytest.raises(StorageCorrupt, match="workhorse check"):
            queues.peek("orders", 10)
    finally:
        storage.close()
    assert [r for r in caplog.records if getattr(r, "event", "") == "storage_corrupt"]
    response = response_for(StorageCorrupt("damaged"))
    assert response.status_code == 500
    assert "workhorse check" in json.loads(bytes(response.body))["msg"]


def test_a_damaged_index_is_found(tmp_path: Path) -> None:
    url, path = sqlite_db(tmp_path)
    damage_root_page(path, "mq_messages_queue")
    code, found = check(url)
    assert code == 1
    assert found["integrity_check"]["level"] == "error"


def test_a_truncated_file_is_found(tmp_path: Path) -> None:
    url, path = sqlite_db(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 3)
    code, found = check(url)
    assert code == 1
    assert found["integrity_check"]["level"] == "error"


def test_a_file_that_is_not_a_database_is_found(tmp_path: Path) -> None:
    path = tmp_path / "wh.db"
    path.write_bytes(bytes(range(256)) * 64)
    code, found = check(f"sqlite:///{path}")
    assert code == 1
    assert "not a database" in found["integrity_check"]["detail"]


def test_a_missing_file_is_reported_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    code, found = check(f"sqlite:///{path}")
    assert code == 1
    assert found["file"]["level"] == "error"
    assert not path.exists()


def test_backup_while_posting_holds_every_message_acknowledged_before_it(
    tmp_path: Path,
) -> None:
    url, _ = sqlite_db(tmp_path, messages=100)
    storage = open_storage(Settings(database_url=url))
    queues = MessageQueues(storage, project_id="p")
    acked: list[str] = []
    enough, stop = threading.Event(), threading.Event()

    def post() -> None:
        i = 0
        while not stop.is_set():
            acked.extend(queues.post("orders", [f"live {i}"]))
            i += 1
            if i == 50:
                enough.set()

    poster = threading.Thread(target=post)
    poster.start()
    try:
        assert enough.wait(30)
        before = list(acked)
        dest = tmp_path / "backups" / "copy.db"
        dest.parent.mkdir()
        code, output = run_cli(url, "backup", str(dest))
        assert code == 0, output
        assert "backed up to" in output
    finally:
        stop.set()
        poster.join()
        storage.close()
    assert len(acked) > len(before)  # writes went on around the backup

    copy_url = f"sqlite:///{dest}"
    code, found = check(copy_url)
    assert code == 0, found
    copy = open_storage(Settings(database_url=copy_url))
    try:
        copied = MessageQueues(copy, project_id="p")
        for message_id in before:
            assert copied.get_message("orders", message_id).id == message_id
    finally:
        copy.close()
    assert not dest.with_name("copy.db.partial").exists()


def test_backup_refuses_to_replace_a_file(tmp_path: Path) -> None:
    url, _ = sqlite_db(tmp_path, messages=100)
    dest = tmp_path / "taken.db"
    dest.write_text("keep me")
    code, output = run_cli(url, "backup", str(dest))
    assert code == 2
    assert "exists" in output
    assert dest.read_text() == "keep me"


def test_backup_of_postgres_points_at_its_own_tools(pg_url: str) -> None:
    code, output = run_cli(pg_url, "backup", "/tmp/never-written.db")
    assert code == 2
    assert "pg_dump" in output
    assert not Path("/tmp/never-written.db").exists()
