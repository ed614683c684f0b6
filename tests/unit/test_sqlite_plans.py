"""SQLite query plans of the runner's hot statements: each reaches its rows through an
index, never by reading the whole tasks table, and the scans that remain read only
the tasks that are running."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from workhorse.storage.queries import load

QUERIES = load("sqlite")

# The statement, and the index it must use.
HOT = {
    "tasks.claim": "tasks_claim",
    "tasks.claim_code": "tasks_claim",
    "tasks.capped_codes": "tasks_queued_code",
    "tasks.count_running": "tasks_running",
    "tasks.claim_mark": "INTEGER PRIMARY KEY",
    "tasks.claim_read": "INTEGER PRIMARY KEY",
    "tasks.finish": "sqlite_autoindex_tasks_1",  # the unique id
    "tasks.heartbeat": "sqlite_autoindex_tasks_1",
    "tasks.rescue_expired": "tasks_running",
}


def _plan(conn: sqlite3.Connection, name: str) -> list[str]:
    sql = QUERIES[name]
    params = {k: None for k in re.findall(r"(?<!:):(\w+)", sql)}
    for key in ("codes", "ids", "seqs", "batch"):
        if key in params:
            params[key] = "[]"
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize(("name", "index"), sorted(HOT.items()))
def test_hot_statements_use_their_index(db_path: Path, name: str, index: str) -> None:
    conn = sqlite3.connect(db_path)
    try:
        plan = _plan(conn, name)
    finally:
        conn.close()
    on_tasks = [step for step in plan if re.search(r"\b(tasks|t)\b", step)]
    assert on_tasks, plan
    assert any(index in step for step in on_tasks), plan
    for step in on_tasks:
        # A scan is allowed only over the running tasks' index.
        assert not step.startswith("SCAN") or "tasks_running" in step, plan
