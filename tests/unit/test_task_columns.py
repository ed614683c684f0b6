"""The tasks table keeps `seq` then Task's fields in order: rows map to Task by position."""

from __future__ import annotations

from dataclasses import fields

from workhorse.domain.task import Task
from workhorse.storage import Storage


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
