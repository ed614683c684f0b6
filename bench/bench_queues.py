"""Message queues: Workhorse on SQLite and PostgreSQL beside Redis lists and RabbitMQ.

    python bench/bench_queues.py                 # everything (~4 min)
    python bench/bench_queues.py --quick         # short runs (~1.5 min)
    python bench/bench_queues.py --backends sqlite --no-peers --only cycle

Workhorse runs in-process through `workhorse.queues.MessageQueues` (what the SDK,
the CLI and the HTTP API call), one process per role, bodies of 100 bytes:

* `cycle100_concurrent`: one producer process posts N messages in batches of 100
  while one consumer process reserves 100 at a time (`wait=1`) and deletes them
  with one batch delete; the rate is N over go -> the consumer's last delete (the
  shape of the shared mq harness's `cycle`). FIFO order and an empty queue at the
  end are checked.
* `post100`, `reserve_delete100`, `cycle100_sequential`: the same work in phases in
  one process: post N, then reserve + delete N; the cycle rate is N over both.
* `single_post` and `raw_insert_commit`: one message per call for a few seconds,
  against a single-row INSERT + COMMIT into a plain table of the same database
  (SQLite: the same file, WAL, synchronous=FULL; PostgreSQL: autocommit over TCP),
  alternated in rounds so load drift hits both; `ratio` = post / raw.
* `single_post_8_threads`: eight threads of one process posting one message per
  call at once (on SQLite the posts waiting behind a commit share the next one).
* `longpoll_wakeup`: a consumer process waits in `reserve(wait=5)`; another
  process posts one message 10-30 ms later; latency is from the post call to the
  reserve's return (CLOCK_MONOTONIC is one clock for every process), ~200 samples.

Peers (brokers from ../shared/bench/mq/services.sh, clients in /tmp/mqbenchvenv):
Redis lists with appendfsync always and RabbitMQ classic durable queues with
publisher confirms, through the shared scripts (`cycle` with batches of 100,
one-at-a-time publish), plus the same long-poll shape (bench/mqpeers_latency.py).

PostgreSQL runs use the bench cluster (127.0.0.1:55432, database `bench`) in a schema
of their own, `wh_bench_queues`, dropped and re-created at the start.

Prints one JSON object per measurement. `cpu_us_per_msg` is the CPU time of the
measuring processes (for SQLite that includes the database); on PostgreSQL
`server_cpu_us_per_msg` adds the server's (the postmaster and its backends, from
/proc). `machine_busy_cores` is what the whole machine used meanwhile: the machine
is shared, so compare CPU per message and ratios taken in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import sqlite3
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_MQ = (
    Path(os.environ.get("BENCH_SHARED", HERE.parent.parent / "shared" / "bench")) / "mq"
)
MQ_PY = os.path.join(
    os.environ.get("BENCH_MQ_VENV", "/tmp/mqbenchvenv"), "bin", "python"
)
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/bench_scratch"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:55432/bench")
# Each script keeps its tables in its own schema of the bench database (the task
# benchmark resets `public`, and the scripts may run beside it).
PG_SCHEMA = "wh_bench_queues"
PROJECT = "bench"
BODY_SIZE = 100
BATCH = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGETS = {
    ("sqlite", "cycle100_concurrent"): 30000,
    ("postgres", "cycle100_concurrent"): 15000,
}
SINGLE_POST_TARGET_RATIO = 0.9
LONGPOLL_P50_TARGET_MS = 5.0


# -- helpers -------------------------------------------------------------------------


def body(i: int) -> str:
    """100 characters, unique: sequence number, send time (monotonic ns), padding."""
    head = f"{i:012d} {time.monotonic_ns():020d} "
    return head + "x" * (BODY_SIZE - len(head))


def seq_of(text: str) -> int:
    return int(text[:12])


def sent_ns(text: str) -> int:
    return int(text[13:33])


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def busy_ticks() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[1:9])
    return user + nice + system + irq + softirq + steal


def loadavg() -> list[str]:
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def emit(row: dict[str, Any]) -> None:
    row.setdefault("loadavg", loadavg())
    row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
    print(json.dumps(row), flush=True)


def sqlite_url(name: str) -> str:
    return f"sqlite:///{SCRATCH / name}"


def pg_url(base: str, schema: str) -> str:
    """`base` with every connection's search_path set to `schema`."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def reset_database(url: str) -> None:
    """A fresh, migrated database: a new SQLite file, or an emptied PG schema (the
    one named by `search_path` in a `pg_url`)."""
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        import psycopg

        schema = (
            url.rsplit("search_path%3D", 1)[1] if "search_path%3D" in url else "public"
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
    storage = open_storage(Settings(database_url=url), migrate=True)
    storage.close()


def open_queues(url: str) -> Any:
    from workhorse.queues import MessageQueues
    from workhorse.settings import Settings
    from workhorse.storage import open_storage

    storage = open_storage(Settings(database_url=url))
    return storage, MessageQueues(storage, project_id=PROJECT)


def pg_server_cpu() -> float | None:
    """CPU seconds used so far by the bench PostgreSQL cluster: the postmaster, its
    live children and (through cutime/cstime) the children it already reaped."""
    pgdata = Path(os.environ.get("BENCH_PGDATA", "/tmp/pgbench_data"))
    try:
        master = int((pgdata / "postmaster.pid").read_text().split()[0])
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                data = (entry / "stat").read_text()
                fields = data[data.rindex(")") + 2 :].split()
                if int(entry.name) == master:
                    total += sum(
                        int(f) for f in fields[11:15]
                    )  # utime stime cutime cstime
                elif int(fields[1]) == master:
                    total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None


def server_cpu(url: str) -> float | None:
    """The database server's CPU seconds so far: PostgreSQL only (SQLite runs inside
    the measured processes)."""
    return pg_server_cpu() if url.startswith("postgres") else None


class Window:
    """Wall time, whole-machine CPU and (for PostgreSQL) the server's CPU of a span."""

    def __init__(self, backend: str = "") -> None:
        self.pg = backend == "postgres"
        self.s0 = self.s1 = None

    def __enter__(self) -> Window:
        self.t0 = time.perf_counter()
        self.b0 = busy_ticks()
        if self.pg:
            self.s0 = pg_server_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.t1 = time.perf_counter()
        self.b1 = busy_ticks()
        if self.pg:
            self.s1 = pg_server_cpu()

    def server_us_per(self, n: int) -> float | None:
        """Server CPU per message (PostgreSQL only), microseconds."""
        if self.s0 is None or self.s1 is None or n <= 0:
            return None
        return (self.s1 - self.s0) / n * 1e6

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0

    @property
    def busy_cores(self) -> float:
        return (self.b1 - self.b0) / CLK_TCK / max(self.seconds, 1e-9)


def in_child(fn: Callable[..., Any], *args: Any, timeout: float = 300) -> Any:
    """Run fn(*args) in a forked process (its own connections); its return value."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()

    def target() -> None:
        try:
            out.put(("ok", fn(*args)))
        except BaseException as exc:
            out.put(("error", repr(exc)))

    proc = ctx.Process(target=target)
    proc.start()
    try:
        status, value = out.get(timeout=timeout)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
    if status != "ok":
        raise RuntimeError(value)
    return value


# -- workhorse: batched cycle ----------------------------------------------------------


def _producer(url: str, queue: str, n: int, ready: Any, go: Any) -> dict[str, Any]:
    storage, q = open_queues(url)
    q.get_queue(queue)  # warm the connection
    ready.set()
    go.wait()
    c0 = time.process_time()
    for start in range(0, n, BATCH):
        q.post(queue, [body(i) for i in range(start, min(n, start + BATCH))])
    t_end = time.monotonic()
    storage.close()
    return {"t_end": t_end, "cpu_s": time.process_time() - c0}


def _consumer(url: str, queue: str, n: int, ready: Any, go: Any) -> dict[str, Any]:
    storage, q = open_queues(url)
    q.get_queue(queue)
    ready.set()
    go.wait()
    c0 = time.process_time()
    count, last, out_of_order, lat = 0, -1, 0, []
    while count < n:
        got = q.reserve(queue, BATCH, wait=1)
        if not got:
            continue
        now = time.monotonic_ns()
        for m in got:
            s = seq_of(m.body)
            out_of_order += s < last
            last = s
            lat.append((now - sent_ns(m.body)) / 1e6)
        q.delete_many(queue, [(m.id, m.reservation_id) for m in got])
        count += len(got)
    t_end = time.monotonic()
    storage.close()
    return {
        "t_end": t_end,
        "cpu_s": time.process_time() - c0,
        "lat": lat,
        "ooo": out_of_order,
    }


def _role(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], out: Any) -> None:
    try:
        out.put((fn.__name__, "ok", fn(*args)))
    except BaseException as exc:
        out.put((fn.__name__, "error", repr(exc)))


def _queue_size(url: str, queue: str) -> int:
    storage, q = open_queues(url)
    try:
        return int(q.get_queue(queue).size or 0)
    finally:
        storage.close()


def _create_queue(url: str, queue: str) -> None:
    storage, q = open_queues(url)
    try:
        q.create_queue(queue, {})
    finally:
        storage.close()


def cycle_concurrent(backend: str, url: str, n: int, rep: int) -> dict[str, Any]:
    queue = f"cycle-{rep}"
    in_child(_create_queue, url, queue)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    ready_c, ready_p, go = ctx.Event(), ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(target=_role, args=(_consumer, (url, queue, n, ready_c, go), out)),
        ctx.Process(target=_role, args=(_producer, (url, queue, n, ready_p, go), out)),
    ]
    for p in procs:
        p.start()
    if not (ready_c.wait(60) and ready_p.wait(60)):
        for p in procs:
            p.terminate()
        raise RuntimeError("cycle roles did not start")
    results: dict[str, dict[str, Any]] = {}
    with Window(backend) as w:
        t0 = time.monotonic()
        go.set()
        while len(results) < 2:
            name, status, value = out.get(timeout=600)
            if status != "ok":
                for p in procs:
                    p.terminate()
                raise RuntimeError(f"{name}: {value}")
            results[name] = value
    for p in procs:
        p.join(10)
    prod, cons = results["_producer"], results["_consumer"]
    seconds = cons["t_end"] - t0
    left = in_child(_queue_size, url, queue)
    return {
        "system": "workhorse",
        "backend": backend,
        "test": "cycle100_concurrent",
        "shape": "1 producer post x100 + 1 consumer reserve x100 (wait=1) + delete_many x100",
        "n": n,
        "rep": rep,
        "seconds": seconds,
        "per_s": n / seconds,
        "publish_s": prod["t_end"] - t0,
        "cpu_us_per_msg": (prod["cpu_s"] + cons["cpu_s"]) / n * 1e6,
        "server_cpu_us_per_msg": w.server_us_per(n),
        "machine_busy_cores": w.busy_cores,
        "lat_ms_p50": pct(cons["lat"], 50),
        "lat_ms_p99": pct(cons["lat"], 99),
        "out_of_order": cons["ooo"],
        "verified_empty": left == 0,
    }


def _sequential(url: str, queue: str, n: int) -> dict[str, Any]:
    storage, q = open_queues(url)
    q.get_queue(queue)
    bodies = [body(i) for i in range(n)]
    s0, c0, t0 = server_cpu(url), time.process_time(), time.perf_counter()
    for start in range(0, n, BATCH):
        q.post(queue, bodies[start : start + BATCH])
    s1, c1, t1 = server_cpu(url), time.process_time(), time.perf_counter()
    count = 0
    while count < n:
        got = q.reserve(queue, BATCH)
        if not got:
            raise RuntimeError(f"queue ran dry after {count} of {n}")
        q.delete_many(queue, [(m.id, m.reservation_id) for m in got])
        count += len(got)
    s2, c2, t2 = server_cpu(url), time.process_time(), time.perf_counter()
    size = int(q.get_queue(queue).size or 0)
    storage.close()
    return {
        "post_s": t1 - t0,
        "post_cpu": c1 - c0,
        "take_s": t2 - t1,
        "take_cpu": c2 - c1,
        "empty": size == 0,
        "post_server": None if s0 is None or s1 is None else s1 - s0,
        "take_server": None if s1 is None or s2 is None else s2 - s1,
    }


def per_msg(seconds: float | None, n: int) -> float | None:
    return None if seconds is None else seconds / n * 1e6


def cycle_sequential(backend: str, url: str, n: int, rep: int) -> list[dict[str, Any]]:
    queue = f"seq-{rep}"
    in_child(_create_queue, url, queue)
    with Window() as w:
        r = in_child(_sequential, url, queue, n)
    common = {
        "system": "workhorse",
        "backend": backend,
        "n": n,
        "rep": rep,
        "machine_busy_cores": w.busy_cores,
    }
    total = r["post_s"] + r["take_s"]
    return [
        {
            **common,
            "test": "post100",
            "seconds": r["post_s"],
            "per_s": n / r["post_s"],
            "cpu_us_per_msg": r["post_cpu"] / n * 1e6,
            "server_cpu_us_per_msg": per_msg(r["post_server"], n),
        },
        {
            **common,
            "test": "reserve_delete100",
            "seconds": r["take_s"],
            "per_s": n / r["take_s"],
            "cpu_us_per_msg": r["take_cpu"] / n * 1e6,
            "server_cpu_us_per_msg": per_msg(r["take_server"], n),
            "verified_empty": r["empty"],
        },
        {
            **common,
            "test": "cycle100_sequential",
            "seconds": total,
            "per_s": n / total,
            "cpu_us_per_msg": (r["post_cpu"] + r["take_cpu"]) / n * 1e6,
            "server_cpu_us_per_msg": per_msg(
                None
                if r["post_server"] is None
                else r["post_server"] + r["take_server"],
                n,
            ),
        },
    ]


# -- workhorse: single post against raw insert + commit -----------------------------------


def _single_post(url: str, seconds: float) -> dict[str, Any]:
    storage, q = open_queues(url)
    q.post("single", [body(0)])  # the queue exists; the connection is warm
    n, s0, c0, t0 = 0, server_cpu(url), time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        q.post("single", [body(n)])
        n += 1
    t1, c1, s1 = time.perf_counter(), time.process_time(), server_cpu(url)
    storage.close()
    server = None if s0 is None or s1 is None else s1 - s0
    return {"n": n, "seconds": t1 - t0, "cpu_s": c1 - c0, "server_s": server}


def _threaded_posts(url: str, seconds: float, threads: int = 8) -> dict[str, Any]:
    storage, q = open_queues(url)
    q.post("single", [body(0)])
    counts = [0] * threads

    def produce(i: int, stop: float) -> None:
        n = 0
        while time.perf_counter() < stop:
            q.post("single", [body(n)])
            n += 1
        counts[i] = n

    c0, t0 = time.process_time(), time.perf_counter()
    workers = [
        threading.Thread(target=produce, args=(i, t0 + seconds)) for i in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    t1, c1 = time.perf_counter(), time.process_time()
    storage.close()
    return {"n": sum(counts), "seconds": t1 - t0, "cpu_s": c1 - c0, "server_s": None}


def _raw_insert(url: str, seconds: float) -> dict[str, Any]:
    """Single-row INSERT + COMMIT into a plain table of the same database."""
    ddl = "CREATE TABLE IF NOT EXISTS bench_raw (seq {pk}, id TEXT NOT NULL, body TEXT NOT NULL)"
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(ddl.format(pk="INTEGER PRIMARY KEY"))
        sql = "INSERT INTO bench_raw (id, body) VALUES (?, ?)"

        def insert(i: int) -> None:
            conn.execute(sql, (f"{i:024x}", body(i)))  # autocommit: one transaction

        close = conn.close
    else:
        import psycopg

        pconn = psycopg.connect(url, autocommit=True)
        pconn.execute(ddl.format(pk="BIGSERIAL PRIMARY KEY"))
        psql = "INSERT INTO bench_raw (id, body) VALUES (%s, %s)"

        def insert(i: int) -> None:
            pconn.execute(psql, (f"{i:024x}", body(i)))

        close = pconn.close
    insert(0)
    n, s0, c0, t0 = 0, server_cpu(url), time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        insert(n)
        n += 1
    t1, c1, s1 = time.perf_counter(), time.process_time(), server_cpu(url)
    close()
    server = None if s0 is None or s1 is None else s1 - s0
    return {"n": n, "seconds": t1 - t0, "cpu_s": c1 - c0, "server_s": server}


def single_vs_raw(
    backend: str, url: str, seconds: float, rounds: int
) -> list[dict[str, Any]]:
    posts, raws, threaded = [], [], []
    for _ in range(rounds):  # alternate, so drift in machine load hits both
        raws.append(in_child(_raw_insert, url, seconds))
        posts.append(in_child(_single_post, url, seconds))
        threaded.append(in_child(_threaded_posts, url, seconds))
    post_rate = statistics.median(r["n"] / r["seconds"] for r in posts)
    raw_rate = statistics.median(r["n"] / r["seconds"] for r in raws)
    threaded_rate = statistics.median(r["n"] / r["seconds"] for r in threaded)
    rows = []
    for test, runs, rate in (
        ("raw_insert_commit", raws, raw_rate),
        ("single_post", posts, post_rate),
        ("single_post_8_threads", threaded, threaded_rate),
    ):
        rows.append(
            {
                "system": "workhorse" if test.startswith("single_post") else backend,
                "backend": backend,
                "test": test,
                "per_s": rate,
                "rounds": rounds,
                "seconds_each": seconds,
                "per_s_all": [round(r["n"] / r["seconds"]) for r in runs],
                "cpu_us_per_msg": statistics.median(
                    r["cpu_s"] / r["n"] * 1e6 for r in runs
                ),
                "server_cpu_us_per_msg": None
                if runs[0]["server_s"] is None
                else statistics.median(r["server_s"] / r["n"] * 1e6 for r in runs),
            }
        )
    rows[1]["ratio"] = post_rate / raw_rate
    rows[1]["target_ratio"] = SINGLE_POST_TARGET_RATIO
    rows[1]["meets_target"] = post_rate / raw_rate >= SINGLE_POST_TARGET_RATIO
    rows[2]["ratio_single"] = threaded_rate / post_rate
    return rows


# -- workhorse: long-poll wake-up ----------------------------------------------------------


def _lp_consumer(url: str, queue: str, samples: int, conn: Any) -> None:
    storage, q = open_queues(url)
    q.get_queue(queue)
    for _ in range(samples):
        conn.send("waiting")
        got = q.reserve(queue, 1, wait=5)
        t = time.monotonic_ns()
        if got:
            q.delete(queue, got[0].id, got[0].reservation_id)
        conn.send((t, len(got)))
    storage.close()


def _lp_producer(
    url: str, queue: str, samples: int, conn: Any
) -> list[tuple[int, int, int, int]]:
    storage, q = open_queues(url)
    q.get_queue(queue)
    rng = random.Random(7)
    out = []
    for i in range(samples):
        conn.recv()  # the consumer is about to call reserve
        time.sleep(rng.uniform(0.010, 0.030))  # ... and is now waiting in it
        t0 = time.monotonic_ns()
        q.post(queue, [body(i)])
        t1 = time.monotonic_ns()
        t_got, got = conn.recv()
        out.append((t0, t1, t_got, got))
    storage.close()
    return out


def longpoll(backend: str, url: str, samples: int) -> dict[str, Any]:
    queue = "longpoll"
    in_child(_create_queue, url, queue)
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    consumer = ctx.Process(target=_lp_consumer, args=(url, queue, samples, a))
    consumer.start()
    try:
        with Window() as w:
            res = in_child(
                _lp_producer, url, queue, samples, b, timeout=samples * 6 + 60
            )
    finally:
        consumer.join(30)
        if consumer.is_alive():
            consumer.terminate()
    lat = [(t_got - t0) / 1e6 for t0, _t1, t_got, got in res if got]
    post_ms = [(t1 - t0) / 1e6 for t0, t1, _t, _g in res]
    p50 = pct(lat, 50)
    return {
        "system": "workhorse",
        "backend": backend,
        "test": "longpoll_wakeup",
        "shape": "consumer process in reserve(n=1, wait=5); producer process posts 1 message",
        "samples": len(lat),
        "missed": samples - len(lat),
        "p50_ms": p50,
        "p90_ms": pct(lat, 90),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat),
        "post_call_p50_ms": pct(post_ms, 50),
        "target_p50_ms": LONGPOLL_P50_TARGET_MS,
        "meets_target": p50 is not None and p50 <= LONGPOLL_P50_TARGET_MS,
        "machine_busy_cores": w.busy_cores,
    }


# -- peers ---------------------------------------------------------------------------------


def mq_services(*args: str) -> int:
    return subprocess.run(
        ["bash", str(SHARED_MQ / "services.sh"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ).returncode


def run_peer(
    script: str, args: list[str], system: str, backend: str, test: str, *, pidfile: str
) -> dict[str, Any]:
    cmd = [MQ_PY, str(SHARED_MQ / script), *args]
    env = dict(os.environ)
    with contextlib.suppress(OSError):
        env["MQBENCH_SERVER_PID"] = Path(pidfile).read_text().strip()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "system": system,
            "backend": backend,
            "test": test,
            "error": f"rc={proc.returncode}",
            "stderr": proc.stderr[-800:],
            "cmd": " ".join(cmd),
        }
    rec = json.loads(lines[-1])
    cpu = rec.get("cpu", {})
    n = rec.get("n") or 1
    row = {
        "system": system,
        "backend": backend,
        "test": test,
        "per_s": rec.get("rate"),
        "n": rec.get("n"),
        "seconds": rec.get("seconds"),
        "case": rec.get("case"),
        "durability": rec.get("durability"),
        "cpu_us_per_msg": ((cpu.get("server_s") or 0) + (cpu.get("client_s") or 0))
        / n
        * 1e6,
        "foreign_cores": cpu.get("foreign_cores"),
        "cmd": " ".join(cmd[1:]),
    }
    for key in (
        "lat_ms_p50",
        "lat_ms_p99",
        "verified_empty",
        "verified_depth",
        "out_of_order",
    ):
        if key in rec:
            row[key] = rec[key]
    return row


def run_peer_latency(
    which: str, samples: int, system: str, backend: str
) -> dict[str, Any]:
    cmd = [MQ_PY, str(HERE / "mqpeers_latency.py"), which, "--samples", str(samples)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=samples * 6 + 120
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "system": system,
            "backend": backend,
            "test": "longpoll_wakeup",
            "error": f"rc={proc.returncode}",
            "stderr": proc.stderr[-800:],
        }
    rec = json.loads(lines[-1])
    return {"system": system, "backend": backend, "test": "longpoll_wakeup", **rec}


PEERS = [
    # (system, backend, services.sh start args, stop arg, pid file, script, latency name, cases)
    (
        "redis",
        "redis-aof-always",
        ["start-redis", "always"],
        "stop-redis",
        "/tmp/mqbench_redis/redis.pid",
        "bench_redis.py",
        "redis",
        [
            ("cycle100_concurrent", ["cycle", "--batch", "100", "--take", "100"]),
            ("post100", ["push", "--batch", "100"]),
            ("reserve_delete100", ["take", "--batch", "100"]),
            ("single_post", ["push", "--batch", "1"]),
        ],
    ),
    (
        "rabbitmq",
        "rabbitmq-classic",
        ["start-rabbit"],
        "stop-rabbit",
        "/tmp/mqbench_rabbit/rabbit.pid",
        "bench_rabbit.py",
        "rabbit",
        [
            ("cycle100_concurrent", ["cycle", "--batch", "100", "--prefetch", "100"]),
            ("post100", ["pub", "--client", "select", "--batch", "100"]),
            ("reserve_delete100", ["consume", "--prefetch", "100"]),
            ("single_post", ["pub", "--client", "blocking"]),
        ],
    ),
]


def start_broker(start: list[str], stop: str, pidfile: str) -> bool:
    """Start a broker through services.sh; whether it runs. Its port lies in Linux's
    ephemeral range, so a passing client connection can hold it: retry a few times."""
    for _ in range(5):
        mq_services(*start)
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(Path(pidfile).read_text().strip()), 0)
            return True
        mq_services(stop)
        time.sleep(2)
    return False


def peers(n: int, samples: int, keep: Callable[[dict[str, Any]], None]) -> None:
    """Redis lists (AOF always) and RabbitMQ classic queues in the same shapes."""
    if not Path(MQ_PY).exists():
        keep(
            {
                "system": "peers",
                "test": "setup",
                "error": f"{MQ_PY} missing: run bench/setup.sh",
            }
        )
        return
    for system, backend, start, stop, pidfile, script, latency_name, cases in PEERS:
        if not start_broker(start, stop, pidfile):
            keep(
                {
                    "system": system,
                    "backend": backend,
                    "test": "setup",
                    "error": f"could not start it: services.sh {' '.join(start)}",
                }
            )
            continue
        try:
            for test, case in cases:
                count = max(n // 4, 500) if test == "single_post" else n
                keep(
                    run_peer(
                        script,
                        [*case, "--n", str(count)],
                        system,
                        backend,
                        test,
                        pidfile=pidfile,
                    )
                )
            keep(run_peer_latency(latency_name, samples, system, backend))
        finally:
            mq_services(stop)


# -- main ----------------------------------------------------------------------------------


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, annotated with every run's rate."""
    ordered = sorted(rows, key=lambda r: r["per_s"])
    mid = dict(ordered[len(ordered) // 2])
    mid["reps"] = len(rows)
    mid["per_s_all"] = [round(r["per_s"]) for r in rows]
    mid["cpu_us_per_msg_median"] = statistics.median(r["cpu_us_per_msg"] for r in rows)
    mid.pop("rep", None)
    return mid


def run_backend(
    backend: str,
    url: str,
    args: argparse.Namespace,
    keep: Callable[[dict[str, Any]], None],
) -> None:
    """Every Workhorse measurement on one backend."""
    want = lambda name: not args.only or name in args.only  # noqa: E731
    try:
        reset_database(url)
    except Exception as exc:  # a missing server is a row, not a crash
        keep(
            {
                "system": "workhorse",
                "backend": backend,
                "test": "setup",
                "error": repr(exc),
            }
        )
        return
    if want("cycle"):
        row = median_row(
            [cycle_concurrent(backend, url, args.n, rep) for rep in range(args.reps)]
        )
        target = TARGETS.get((backend, "cycle100_concurrent"))
        row.update(
            target_per_s=target, meets_target=bool(target and row["per_s"] >= target)
        )
        keep(row)
    if want("sequential"):
        runs = [cycle_sequential(backend, url, args.n, rep) for rep in range(args.reps)]
        for i in range(3):
            keep(median_row([r[i] for r in runs]))
    if want("single"):
        for row in single_vs_raw(backend, url, args.single_seconds, args.single_rounds):
            keep(row)
    if want("longpoll"):
        keep(longpoll(backend, url, args.samples))


def versus_peers(results: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Ratios against the peers measured in this run."""
    tests = (
        "cycle100_concurrent",
        "post100",
        "reserve_delete100",
        "single_post",
        "longpoll_wakeup",
    )
    for backend in ("sqlite", "postgres"):
        for test in tests:
            ours = results.get((backend, test))
            if not ours:
                continue
            versus = {}
            for peer in ("redis-aof-always", "rabbitmq-classic"):
                theirs = results.get((peer, test))
                if not theirs:
                    continue
                if test == "longpoll_wakeup":
                    if ours.get("p50_ms") and theirs.get("p50_ms"):
                        versus[peer] = round(theirs["p50_ms"] / ours["p50_ms"], 2)
                elif ours.get("per_s") and theirs.get("per_s"):
                    versus[peer] = round(ours["per_s"] / theirs["per_s"], 2)
            if versus:
                emit(
                    {
                        "system": "workhorse",
                        "backend": backend,
                        "test": f"{test}_vs_peers",
                        "ratio": versus,
                        "meaning": "workhorse / peer rate (latency: peer p50 / ours); >1 is better",
                    }
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short runs")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--only", default="", help="comma list: cycle,sequential,single,longpoll"
    )
    ap.add_argument("--n", type=int, default=None, help="messages per cycle run")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--pg-url", default=PG_URL)
    args = ap.parse_args()
    args.n = args.n or (2000 if args.quick else 20000)
    args.reps = args.reps or (1 if args.quick else 3)
    args.single_seconds, args.single_rounds = (1.0, 1) if args.quick else (3.0, 3)
    args.samples = 40 if args.quick else 200
    args.only = {s for s in args.only.split(",") if s}
    results: dict[tuple[str, str], dict[str, Any]] = {}

    def keep(row: dict[str, Any]) -> None:
        emit(row)
        if "error" not in row and "test" in row:
            results[(row["backend"], row["test"])] = row

    for backend in [b for b in args.backends.split(",") if b]:
        url = (
            sqlite_url("bench_queues.db")
            if backend == "sqlite"
            else pg_url(args.pg_url, PG_SCHEMA)
        )
        run_backend(backend, url, args, keep)
    if not args.no_peers:
        peers(args.n, args.samples, keep)
    versus_peers(results)


if __name__ == "__main__":
    main()
