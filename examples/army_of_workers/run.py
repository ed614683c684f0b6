"""Army of workers: one sandboxed task per image, retried on failure, at most 4 at once.

    python examples/army_of_workers/run.py [--tasks 200] [--database-url URL]

Uploads ./worker as the code package `thumbnail` (max_concurrency 4), queues one task per
image in a single transaction, starts two runner processes, and waits for the batch.
Uses a temporary SQLite database unless --database-url is given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from workhorse.client import Client, CodePackage
from workhorse.settings import Settings
from workhorse.storage import open_storage

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="workhorse-army-"))
    url = args.database_url or f"sqlite:///{tmp / 'army.db'}"
    storage = open_storage(Settings(database_url=url), migrate=True)
    client = Client(storage)
    client.upload_directory(
        HERE / "worker",
        CodePackage(
            name="thumbnail",
            command="python3 thumbnail.py",
            max_concurrency=4,
            retries=2,
            retries_delay=1,
            timeout=30,
        ),
    )
    ids = client.queue_many(
        "thumbnail", [json.dumps({"image_id": i}) for i in range(args.tasks)]
    )
    print(f"queued {len(ids)} tasks")
    runners = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "workhorse",
                "--database-url",
                url,
                "runner",
                "--concurrency",
                "4",
                "--cache-dir",
                str(tmp / "cache"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    started = time.monotonic()
    try:
        while True:
            counts = Counter({st: n for _, st, n in client.counts()})
            done = sum(n for st, n in counts.items() if st not in ("queued", "running"))
            print(
                f"\r{done}/{len(ids)} finished, {counts.get('running', 0)} running",
                end="",
                flush=True,
            )
            if done == len(ids):
                break
            time.sleep(0.2)
    finally:
        for runner in runners:
            runner.terminate()
        for runner in runners:
            runner.wait()
    print(f"\nall finished in {time.monotonic() - started:.1f} s: {dict(counts)}")
    print(client.log(ids[0]).strip())
    storage.close()


if __name__ == "__main__":
    main()
