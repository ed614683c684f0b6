"""The tasks table keeps `seq` then Task's fields in order: rows map to Task by position."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from workhorse.domain.task import Task
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage
from workhorse.storage.queries import load


def test_tasks_table_columns_follow_the_task_fields(
    storage: Storage, backend: str
) -> None:
    if backend == "sqlite":
        rows = storage.run(
            lambda tx: tx.conn.fetch_all("PRAGMA table_info(tasks)"), write=False
        )
        names = [r["name"] for r in rows]
    else:
        rows = storage.run(
            lambda tx: tx.conn.fetch_all(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'tasks' ORDER BY ordinal_position"
            ),
            write=False,
        )
        names = [r["column_name"] for r in rows]
    expected = ["seq", *(f.name for f in fields(Task))]
    assert names[: len(expected)] == expected


def test_sqlite_claim_reads_back_the_columns_in_table_order() -> None:
    """claim_read lists the columns itself (JSON rows), so it must follow them too."""
    sql = load("sqlite")["tasks.claim_read"]
    listed = re.search(r"json_array\((.*?)\)\) AS tasks", sql, re.S)
    assert listed is not None
    names = [n.strip() for n in listed.group(1).split(",")]
    assert names == ["seq", *(f.name for f in fields(Task))]


def test_sqlite_intake_view_has_the_tasks_columns(tmp_path: Path) -> None:
    """Reads by id union `tasks` with `intake_tasks`: same columns, same order."""
    storage = open_storage(
        Settings(database_url=f"sqlite:///{tmp_path / 'w.db'}"), migrate=True
    )
    names = {
        table: [
            r["name"]
            for r in storage.run(
                lambda tx, t=table: tx.conn.fetch_all(f"PRAGMA table_info({t})"),
                write=False,
            )
        ]
        for table in ("tasks", "intake_tasks")
    }
    storage.close()
    assert names["intake_tasks"] == names["tasks"]
