"""`make bench`: Workhorse and its peers measured side by side, in one run.

    python bench/run.py                 # everything, 1 repetition (~15 min)
    python bench/run.py --reps 3        # medians of 3
    python bench/run.py --only workhorse,huey --quick

Uses the shared harness in ../shared/bench (peers, job body, limits) and the
adapters in this folder. Writes bench/results/<stamp>/raw.jsonl and summary.md;
docs/benchmarks.md is written from summary.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = Path(os.environ.get("BENCH_SHARED", ROOT.parent / "shared" / "bench"))
VENV = Path(os.environ.get("BENCH_VENV", "/tmp/benchvenv"))
PY = str(VENV / "bin" / "python")


def task_rows(n: int) -> list[dict[str, object]]:
    """(system, variant, mode) rows for the task-queue comparison."""
    rows: list[dict[str, object]] = []
    for variant in ("sqlite", "postgres"):
        for mode in ("enqueue", "bulk", "drain", "latency"):
            rows.append(
                {
                    "system": "workhorse",
                    "variant": variant,
                    "mode": mode,
                    "n": n * 2 if mode in ("drain", "bulk") else n,
                    "env": {"BENCH_WH_VARIANT": variant},
                }
            )
    peers = [
        ("huey", "redis", ["enqueue", "drain", "latency"]),
        ("huey", "sqlite", ["enqueue", "drain", "latency"]),
        ("huey", "postgres", ["enqueue", "drain", "latency"]),
        ("dramatiq", "p2t8", ["enqueue", "drain", "latency"]),
        ("procrastinate", "c10", ["enqueue", "bulk", "drain", "latency"]),
        ("rq", "simple2", ["enqueue", "bulk", "drain", "latency"]),
        ("celery", "solo2", ["enqueue", "drain", "latency"]),
        ("arq", "poll10ms", ["enqueue", "drain", "latency"]),
    ]
    for system, variant, modes in peers:
        for mode in modes:
            rows.append(
                {
                    "system": system,
                    "variant": variant,
                    "mode": mode,
                    "n": n * 2 if mode in ("drain", "bulk") else n,
                    "env": {},
                }
            )
    return rows


def run_json(
    cmd: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> list[dict[str, object]]:
    """Run a benchmark script; the JSON objects it printed (or an error row)."""
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(SHARED), str(HERE), full_env.get("PYTHONPATH", "")]
    )
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return [{"error": f"timeout after {timeout}s", "cmd": " ".join(cmd)}]
    rows = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                rows.append(json.loads(line))
    if proc.returncode != 0 or not rows:
        rows.append(
            {
                "error": f"rc={proc.returncode}",
                "cmd": " ".join(cmd),
                "stderr": proc.stderr[-1500:],
            }
        )
    return rows


def extra_rows(quick: bool) -> list[dict[str, object]]:
    """Workhorse-only benchmarks (limits, code tasks, queues, API, schedules), each a script."""
    secs = "2" if quick else "4"
    rows: list[dict[str, object]] = [
        {
            "label": "limits sqlite",
            "cmd": [
                PY,
                str(SHARED / "limits_sqlite.py"),
                "--seconds",
                secs,
                "--sync",
                "FULL",
                "--only",
                "insert_commit,insert_batch100",
            ],
        },
        {
            "label": "limits postgres",
            "cmd": [
                PY,
                str(SHARED / "limits_pg.py"),
                "--seconds",
                secs,
                "--only",
                "insert_commit,insert_batch100",
            ],
        },
    ]
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name != "bench_workhorse.py":
            rows.append(
                {
                    "label": script.stem,
                    "cmd": [PY, str(script)] + (["--quick"] if quick else []),
                }
            )
    return rows


def median_rows(rows: list[dict[str, object]], key: str) -> float | None:
    values = [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument(
        "--quick", action="store_true", help="small N, short limits (smoke run)"
    )
    ap.add_argument("--only", default="", help="comma list of systems or extra labels")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--skip-extras", action="store_true")
    args = ap.parse_args()
    n = 2000 if args.quick else args.n
    subprocess.run(["bash", str(HERE / "setup.sh")], check=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = HERE / "results" / stamp
    out.mkdir(parents=True)
    raw = out / "raw.jsonl"
    only = {s for s in args.only.split(",") if s}
    plan = [
        r
        for r in task_rows(n)
        if (not only or r["system"] in only)
        and not (args.skip_peers and r["system"] != "workhorse")
    ]
    extras = (
        []
        if args.skip_extras
        else [r for r in extra_rows(args.quick) if not only or r["label"] in only]
    )
    started = time.time()
    with raw.open("a") as f:
        for rep in range(1, args.reps + 1):
            for row in plan:
                system = str(row["system"])
                script = (
                    HERE / "bench_workhorse.py"
                    if system == "workhorse"
                    else SHARED / f"bench_{system}.py"
                )
                cmd = [
                    PY,
                    str(script),
                    "--mode",
                    str(row["mode"]),
                    "--variant",
                    "default" if system == "workhorse" else str(row["variant"]),
                    "--n",
                    str(row["n"]),
                ]
                print(
                    f"[{time.strftime('%H:%M:%S')}] rep {rep} "
                    f"{system}/{row['variant']} {row['mode']}",
                    flush=True,
                )
                for r in run_json(cmd, SHARED, dict(row["env"]), 600):  # type: ignore[arg-type]
                    r.update(
                        {
                            "rep": rep,
                            "system": system,
                            "variant": row["variant"],
                            "mode": row["mode"],
                        }
                    )
                    f.write(json.dumps(r) + "\n")
                    f.flush()
            for extra in extras:
                print(
                    f"[{time.strftime('%H:%M:%S')}] rep {rep} {extra['label']}",
                    flush=True,
                )
                for r in run_json(list(extra["cmd"]), SHARED, {}, 900):  # type: ignore[arg-type]
                    r.update({"rep": rep, "label": extra["label"]})
                    f.write(json.dumps(r) + "\n")
                    f.flush()
    machine = (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    subprocess.run(
        [
            sys.executable,
            str(HERE / "summarize.py"),
            str(raw),
            "--machine",
            machine,
            "--seconds",
            f"{time.time() - started:.0f}",
        ],
        check=False,
    )
    print(f"results: {out}")


if __name__ == "__main__":
    main()
