"""Workhorse adapter for the shared task-queue harness (../../shared/bench/common.py).

Variants:
  sqlite    embedded SQLite (WAL, synchronous=FULL) in the harness scratch dir
  postgres  the harness's PostgreSQL (127.0.0.1:55432, synchronous_commit=on)
Workers: 2 x `workhorse runner --app bench_workhorse:app --no-packages`
(concurrency from BENCH_WH_CONCURRENCY, default 8).
Producer: `job.queue(ts)`; bulk: `job.queue_many(...)` (one transaction per batch).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import benchjob
import common  # the shared harness (on PYTHONPATH)

import workhorse

VARIANT = os.environ.get("BENCH_WH_VARIANT", "sqlite")
SQLITE_PATH = Path(common.SCRATCH) / "workhorse" / "bench.db"
URLS = {"sqlite": f"sqlite:///{SQLITE_PATH}", "postgres": common.PG_DSN}
URL = os.environ.get("BENCH_WH_URL") or URLS[VARIANT]
CONCURRENCY = os.environ.get("BENCH_WH_CONCURRENCY", "8")
PREFETCH = os.environ.get("BENCH_WH_PREFETCH", "")

app = workhorse.App(URL)


@app.task
def bench_job(ts: float) -> None:
    """The harness's job body: one Redis round trip of instrumentation."""
    benchjob.job_body(ts)


def _compile_sources() -> None:
    """Write the bytecode caches a regular (non-editable) install has.

    Workhorse is installed in the bench environment in editable mode, from the
    source tree; where PYTHONDONTWRITEBYTECODE is set, nothing then caches its
    bytecode and every runner would compile the whole package at start-up, which
    the peers, installed from wheels and compiled at install, never do.
    """
    import compileall

    compileall.compile_dir(Path(workhorse.__file__).parent, quiet=2)
    compileall.compile_file(__file__, quiet=2)


def _reset_database() -> None:
    app.close()
    if VARIANT == "sqlite":
        shutil.rmtree(SQLITE_PATH.parent, ignore_errors=True)
        SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    else:
        import psycopg

        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    app.register_all()
    app.close()


class Adapter:
    """What the harness drives."""

    name = "workhorse"
    version = workhorse.__version__
    has_bulk = True

    def __init__(self, variant: str) -> None:
        self.variant = VARIANT if variant == "default" else variant
        if self.variant != VARIANT:
            raise SystemExit(f"set BENCH_WH_VARIANT={self.variant} in the environment")
        self.backend = self.variant
        self.worker_desc = f"2 x workhorse runner --concurrency {CONCURRENCY}"

    def setup(self) -> None:
        _compile_sources()
        app.register_all()

    def reset(self) -> None:
        _reset_database()

    def enqueue(self, ts: float) -> None:
        bench_job.queue(ts)

    def enqueue_bulk(self, tss: list[float]) -> None:
        bench_job.queue_many([[t] for t in tss])

    def queued_count(self) -> int:
        return sum(n for _, st, n in app.client.counts() if st == "queued")

    def worker_cmds(self) -> list[list[str]]:
        exe = str(Path(sys.executable).parent / "workhorse")
        cmd = [
            exe,
            "--database-url",
            URL,
            "runner",
            "--app",
            "bench_workhorse:app",
            "--no-packages",
            "--concurrency",
            CONCURRENCY,
        ]
        if PREFETCH:
            cmd += ["--prefetch", PREFETCH]
        return [cmd, list(cmd)]

    def close(self) -> None:
        app.close()


if __name__ == "__main__":
    import bench_workhorse

    common.main(bench_workhorse.Adapter)
