"""Single durable enqueue against the database's raw insert + commit, same run.

    python bench/bench_enqueue.py                    # both backends, 3 rounds of 3 s
    python bench/bench_enqueue.py --quick --backends sqlite

Three measurements, alternated in rounds so drift in machine load hits each alike,
every one a fresh process doing one insert per transaction for a few seconds:

* `raw_insert_commit`: a single-row INSERT + COMMIT into a plain two-column table
  (the shape of the shared harness's limits scripts).
* `raw_task_row`: the same INSERT + COMMIT of a Workhorse task row into the tasks
  table with its indexes, through the driver directly: SQLite binds Workhorse's own
  statement; PostgreSQL a plain `INSERT ... VALUES` of the same columns (no JSON, no
  NOTIFY). This is the database's cost of the row itself.
* `enqueue`: `task.queue(ts)` through the SDK (what users call): the payload encoded
  and checked, the row inserted, runners told on commit.

* `enqueue_unique`: `task.options(unique_key=...).queue(ts)` with a new key each call:
  the keyed path (insert skipping what the unique index refuses, in a transaction; on
  SQLite straight into `tasks`, not the intake). `ratio_plain` = it / enqueue.

* `enqueue_8_threads`: eight threads of one process calling `task.queue(ts)` at
  once (a threaded web server's producers). On SQLite the calls that wait behind
  a commit share the next one (`storage.shared_commits`); PostgreSQL commits
  them on separate connections at once.

`ratio_raw` = enqueue / raw_insert_commit (the issue's figure); `ratio_row` =
enqueue / raw_task_row (what the SDK adds over the row it must write).
SQLite: WAL, synchronous=FULL; PostgreSQL: the bench cluster (127.0.0.1:55432,
synchronous_commit=on), schema `wh_bench_enqueue`. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import threading
import time
from typing import Any

from bench_queues import (
    PG_URL,
    _raw_insert,
    emit,
    in_child,
    pg_url,
    reset_database,
    server_cpu,
    sqlite_url,
)

PG_SCHEMA = "wh_bench_enqueue"
TARGET_RATIO = 0.9

PG_TASK_INSERT = """
INSERT INTO tasks (id, project_id, code_name, kind, code_revision, payload, status,
                   priority, run_at, timeout, label, cluster, retries, retries_delay,
                   backoff, created_at, schedule_id, parent_id)
VALUES (%(id)s, %(project_id)s, %(code_name)s, %(kind)s, %(code_revision)s, %(payload)s,
        'queued', %(priority)s, extract(epoch from now()) + %(delay)s, %(timeout)s,
        %(label)s, %(cluster)s, %(retries)s, %(retries_delay)s, %(backoff)s,
        extract(epoch from now()), %(schedule_id)s, %(parent_id)s)
"""


def _app(url: str) -> Any:
    import workhorse

    app = workhorse.App(url)

    @app.task
    def bench_job(ts: float) -> None:
        """Never run here: only queued."""

    app.register_all()
    return app, bench_job


def _timed(step: Any, url: str, seconds: float) -> dict[str, Any]:
    step(0)  # warm: connection open, statement prepared
    n, s0, c0, t0 = 0, server_cpu(url), time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step(n)
        n += 1
    t1, c1, s1 = time.perf_counter(), time.process_time(), server_cpu(url)
    server = None if s0 is None or s1 is None else s1 - s0
    return {"n": n, "seconds": t1 - t0, "cpu_s": c1 - c0, "server_s": server}


def _enqueue(url: str, seconds: float) -> dict[str, Any]:
    app, job = _app(url)
    try:
        return _timed(lambda i: job.queue(time.time()), url, seconds)
    finally:
        app.close()


def _enqueue_unique(url: str, seconds: float) -> dict[str, Any]:
    app, job = _app(url)
    try:
        return _timed(
            lambda i: job.options(unique_key=f"k{i}-{time.time()}").queue(time.time()),
            url,
            seconds,
        )
    finally:
        app.close()


def _enqueue_threads(url: str, seconds: float, threads: int = 8) -> dict[str, Any]:
    app, job = _app(url)
    counts = [0] * threads
    job.queue(time.time())  # warm, as `_timed` does

    def produce(i: int, stop: float) -> None:
        n = 0
        while time.perf_counter() < stop:
            job.queue(time.time())
            n += 1
        counts[i] = n

    try:
        c0, t0 = time.process_time(), time.perf_counter()
        workers = [
            threading.Thread(target=produce, args=(i, t0 + seconds))
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        t1, c1 = time.perf_counter(), time.process_time()
        n = sum(counts)
        return {"n": n, "seconds": t1 - t0, "cpu_s": c1 - c0, "server_s": None}
    finally:
        app.close()


def _raw_task_row(url: str, seconds: float) -> dict[str, Any]:
    from workhorse.domain.ids import new_id
    from workhorse.domain.task import NewTask
    from workhorse.storage.queries import load

    row = {
        "project_id": "default",
        "code_name": "bench_job",
        "kind": "python",
        "code_revision": None,
        "priority": 0,
        "delay": 0.0,
        "timeout": 3600,
        "label": None,
        "cluster": "default",
        "retries": 0,
        "retries_delay": 60,
        "backoff": False,
        "schedule_id": None,
        "parent_id": None,
        "unique_key": None,
        "now": None,
    }

    def payload() -> str:
        return f'{{"args":[{time.time()!r}]}}'

    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        sql = load("sqlite")[
            "tasks.insert"
        ]  # binds NewTask's fields by position, then now
        fields = [*NewTask.__dataclass_fields__, "now"]

        def insert(i: int) -> None:  # autocommit: one transaction each
            values = {**row, "id": new_id(), "payload": payload()}
            conn.execute(sql, [values[f] for f in fields])

        try:
            return _timed(insert, url, seconds)
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True) as pconn:
        return _timed(
            lambda i: pconn.execute(
                PG_TASK_INSERT, {**row, "id": new_id(), "payload": payload()}
            ),
            url,
            seconds,
        )


def measure(
    backend: str, url: str, seconds: float, rounds: int
) -> list[dict[str, Any]]:
    reset_database(url)
    in_child(lambda: _app(url)[0].close())  # the code is registered once
    runs: dict[str, list[dict[str, Any]]] = {
        "raw_insert_commit": [],
        "raw_task_row": [],
        "enqueue": [],
        "enqueue_unique": [],
        "enqueue_8_threads": [],
    }
    for _ in range(rounds):
        runs["raw_insert_commit"].append(in_child(_raw_insert, url, seconds))
        runs["raw_task_row"].append(in_child(_raw_task_row, url, seconds))
        runs["enqueue"].append(in_child(_enqueue, url, seconds))
        runs["enqueue_unique"].append(in_child(_enqueue_unique, url, seconds))
        runs["enqueue_8_threads"].append(in_child(_enqueue_threads, url, seconds))
    rates = {
        test: statistics.median(r["n"] / r["seconds"] for r in rs)
        for test, rs in runs.items()
    }
    rows = []
    for test, rs in runs.items():
        rows.append(
            {
                "system": "workhorse" if test.startswith("enqueue") else backend,
                "backend": backend,
                "test": test,
                "per_s": rates[test],
                "per_s_all": [round(r["n"] / r["seconds"]) for r in rs],
                "rounds": rounds,
                "seconds_each": seconds,
                "cpu_us_per_op": statistics.median(
                    r["cpu_s"] / r["n"] * 1e6 for r in rs
                ),
                "server_cpu_us_per_op": None
                if rs[0]["server_s"] is None
                else statistics.median(r["server_s"] / r["n"] * 1e6 for r in rs),
            }
        )
    ratio_raw = rates["enqueue"] / rates["raw_insert_commit"]
    by_test = {row["test"]: row for row in rows}
    by_test["enqueue_8_threads"]["ratio_single"] = (
        rates["enqueue_8_threads"] / rates["enqueue"]
    )
    by_test["enqueue_unique"]["ratio_plain"] = (
        rates["enqueue_unique"] / rates["enqueue"]
    )
    by_test["enqueue"].update(
        {
            "ratio_raw": ratio_raw,
            "ratio_row": rates["enqueue"] / rates["raw_task_row"],
            "target_ratio": TARGET_RATIO,
            "meets_target": ratio_raw >= TARGET_RATIO,
        }
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one round of 1 s")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg-url", default=PG_URL)
    args = ap.parse_args()
    seconds, rounds = (1.0, 1) if args.quick else (3.0, 3)
    for backend in [b for b in args.backends.split(",") if b]:
        url = (
            sqlite_url("bench_enqueue.db")
            if backend == "sqlite"
            else pg_url(args.pg_url, PG_SCHEMA)
        )
        for row in measure(backend, url, seconds, rounds):
            emit({**row, "loadavg": os.getloadavg()[0]})


if __name__ == "__main__":
    main()
