"""Turn a raw.jsonl from bench/run.py into summary.md: medians, peers side by side, ratios."""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

TARGETS = {
    ("sqlite", "drain"): 15000,
    ("postgres", "drain"): 10000,
    ("sqlite", "bulk"): 50000,
    ("postgres", "bulk"): 50000,
}


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


MQ_KEYS = (
    "per_s",
    "msg_per_s",
    "cpu_us_per_msg",
    "server_cpu_us_per_req",
    "server_cpu_us_per_msg",
    "p50_ms",
    "p99_ms",
    "ratio",
    "machine_busy_cores",
)
MQ_NOTES = (
    "target_per_s",
    "target_ratio",
    "target_p50_ms",
    "target",
    "meets_target",
    "wrk_cmd",
)
MQ_LABELS = (
    (
        "bench_queues",
        "Message queues (in-process SDK calls; peers through their Python clients)",
    ),
    ("bench_api", "HTTP API under wrk"),
)


def mq_row(
    key: tuple[str, str, str], c: dict[str, list[float]], note: dict[str, object]
) -> str:
    """One table line: medians over repetitions."""
    batched = c["msg_per_s"] and c["msg_per_s"] != c["per_s"]
    rate = med(c["msg_per_s"]) if batched else med(c["per_s"])
    cpu = fmt(med(c["cpu_us_per_msg"]), 1)
    if c["server_cpu_us_per_msg"]:
        cpu += f" + server {fmt(med(c['server_cpu_us_per_msg']), 1)}"
    if c["server_cpu_us_per_req"]:
        cpu = f"(server {fmt(med(c['server_cpu_us_per_req']), 0)} per request)"
    lat = (
        "-"
        if not c["p50_ms"]
        else f"{fmt(med(c['p50_ms']), 2)} / {fmt(med(c['p99_ms']), 2)}"
    )
    target = next((note[k] for k in MQ_NOTES[:4] if note.get(k)), "-")
    met = {True: "yes", False: "**no**"}.get(note.get("meets_target"), "")  # type: ignore[arg-type]
    return (
        f"| {key[0]} | {key[1]} | {key[2]} | {fmt(rate)} | {cpu} | {lat} | "
        f"{fmt(med(c['ratio']), 2)} | {fmt(med(c['machine_busy_cores']), 2)} | "
        f"{json.dumps(target) if isinstance(target, dict) else target} | {met} |"
    )


def mq_tables(extras: dict[str, list[dict[str, object]]]) -> list[str]:
    """Message-queue and HTTP API rows (bench_queues, bench_api) as tables."""
    out: list[str] = []
    for label, title in MQ_LABELS:
        cells: dict[tuple[str, str, str], dict[str, list[float]]]
        cells = defaultdict(lambda: defaultdict(list))
        notes: dict[tuple[str, str, str], dict[str, object]] = {}
        rows = [r for r in extras.get(label, []) if "test" in r]
        for r in rows:
            if isinstance(r.get("ratio"), dict):
                continue
            key = (str(r.get("system", "")), str(r.get("backend", "")), str(r["test"]))
            for k in MQ_KEYS:
                if isinstance(r.get(k), int | float):
                    cells[key][k].append(float(r[k]))  # type: ignore[arg-type]
            notes[key] = {k: r[k] for k in MQ_NOTES if k in r}
        if not cells:
            continue
        out += [
            f"## {title}",
            "",
            "| system | backend | test | rate /s | CPU us/msg | p50 / p99 ms | ratio "
            "| busy cores | target | met |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        order = sorted(cells, key=lambda k: (k[1], k[2], k[0] != "workhorse", k[0]))
        out += [mq_row(key, cells[key], notes[key]) for key in order]
        ratios = [
            f"- {r.get('backend')} {r.get('test')}: {json.dumps(r['ratio'])}"
            for r in rows
            if isinstance(r.get("ratio"), dict)
        ]
        if ratios:
            out += [
                "",
                "Workhorse / peer (rates; latency: peer p50 / ours), above 1 is better:",
                "",
                *ratios,
            ]
        commands = sorted({str(n["wrk_cmd"]) for n in notes.values() if "wrk_cmd" in n})
        if commands:
            out += ["", "wrk command lines:", "", *(f"- `{cmd}`" for cmd in commands)]
        out.append("")
    return out


Cells = dict[tuple[str, str, str], dict[str, list[float]]]


def task_table(cells: Cells, systems: list[tuple[str, str]]) -> list[str]:
    """Every system's enqueue, bulk, drain and latency medians."""
    out = [
        "| system | backend/variant | enqueue/s | bulk/s | drain/s (from launch) "
        "| drain/s steady | latency p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s, v in systems:

        def c(mode: str, key: str, s: str = s, v: str = v) -> float | None:
            return med(cells[(s, v, mode)][key])

        lat = f"{fmt(c('latency', 'p50_ms'), 2)} / {fmt(c('latency', 'p99_ms'), 2)}"
        out.append(
            f"| {s} | {v} | {fmt(c('enqueue', 'jobs_per_s'))} | "
            f"{fmt(c('bulk', 'jobs_per_s'))} | {fmt(c('drain', 'jobs_per_s'))} | "
            f"{fmt(c('drain', 'steady_jobs_per_s'))} | {lat} |"
        )
    return out


def peer_table(cells: Cells, systems: list[tuple[str, str]]) -> list[str]:
    """Workhorse against the best peer for each figure, with the targets."""
    out = [
        "",
        "## Workhorse against the best peer measured in the same run",
        "",
        "| figure | workhorse | best peer | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "postgres"):
        for mode, key, better in (
            ("enqueue", "jobs_per_s", max),
            ("bulk", "jobs_per_s", max),
            ("drain", "jobs_per_s", max),
            ("latency", "p50_ms", min),
            ("latency", "p99_ms", min),
        ):
            ours = med(cells[("workhorse", backend, mode)][key])
            peers = [
                (med(cells[(s, v, mode)][key]), f"{s}/{v}")
                for s, v in systems
                if s != "workhorse" and med(cells[(s, v, mode)][key]) is not None
            ]
            if ours is None or not peers:
                continue
            best = better(peers, key=lambda p: p[0])  # type: ignore[arg-type,return-value]
            ratio = (ours / best[0]) if better is max else (best[0] / ours)
            target = TARGETS.get((backend, mode))
            verdict = f"{ratio:.2f}x ({'better' if ratio >= 1 else 'worse'})"
            digits = 2 if "ms" in key else 0
            out.append(
                f"| {mode} {key} ({backend}) | {fmt(ours, digits)} | "
                f"{fmt(best[0], digits)} ({best[1]}) | {verdict} | "
                f"{fmt(target) if target else '-'} |"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--machine", default="")
    ap.add_argument("--seconds", default="")
    args = ap.parse_args()
    raw = Path(args.raw)
    rows = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
    cells: dict[tuple[str, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    extras: dict[str, list[dict[str, object]]] = defaultdict(list)
    errors = [r for r in rows if "error" in r]
    for r in rows:
        if "error" in r:
            continue
        if "label" in r:
            extras[str(r["label"])].append(r)
            continue
        key = (r["system"], r["variant"], r["mode"])
        for k in ("jobs_per_s", "steady_jobs_per_s", "p50_ms", "p99_ms"):
            if isinstance(r.get(k), int | float):
                cells[key][k].append(float(r[k]))
    systems = sorted(
        {(s, v) for s, v, _ in cells}, key=lambda sv: (sv[0] != "workhorse", sv)
    )
    out = ["# Benchmark summary", ""]
    if args.machine:
        out += [f"Machine: {args.machine}. Run took {args.seconds} s.", ""]
    out += task_table(cells, systems)
    out += peer_table(cells, systems)
    if extras:
        out += ["", *mq_tables(extras)]
        out += ["", "## Other measurements", ""]
        for label, items in sorted(extras.items()):
            out.append(f"### {label}")
            for item in items:
                shown = {
                    k: (round(v, 2) if isinstance(v, float) else v)
                    for k, v in item.items()
                    if k not in ("label", "rep", "settings")
                }
                out.append(f"- `{json.dumps(shown)}`")
            out.append("")
    if errors:
        out += ["", "## Errors", ""] + [f"- `{json.dumps(e)[:400]}`" for e in errors]
    (raw.parent / "summary.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
