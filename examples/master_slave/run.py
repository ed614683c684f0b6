"""Run the master/slave example end to end on a temporary SQLite database.

python examples/master_slave/run.py [--items 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="workhorse-master-"))
    os.environ.setdefault("WORKHORSE_DATABASE_URL", f"sqlite:///{tmp / 'master.db'}")
    sys.path.insert(0, str(HERE))
    from tasks import app, plan_import

    app.register_all()
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workhorse",
            "runner",
            "--app",
            "tasks:app",
            "--concurrency",
            "4",
            "--no-packages",
        ],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        master = plan_import.queue(args.items).wait(60)
        print(f"master {master.id}: {master.status}, {master.result}")
        while True:
            summary = master.children()
            print(f"\rchildren: {summary}", end="", flush=True)
            if sum(summary.values()) and not set(summary) - {
                "complete",
                "error",
                "cancelled",
            }:
                break
            time.sleep(0.2)
        print()
    finally:
        runner.terminate()
        runner.wait()
    app.close()


if __name__ == "__main__":
    main()
