"""Run the web worker example end to end on a temporary SQLite database.

python examples/web_worker/run.py [--requests 40]

Eight request threads take a burst of requests for three pages. A request only queues
the page's render and answers with the task's id (a thin request); the page polls for
the fragment later. The unique task turns the burst into one render per page.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).parent
PAGES = ("home", "pricing", "docs")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="workhorse-web-"))
    os.environ.setdefault("WORKHORSE_DATABASE_URL", f"sqlite:///{tmp / 'web.db'}")
    sys.path.insert(0, str(HERE))
    from tasks import app, render_report

    app.register_all()

    def request(i: int) -> tuple[str, bool]:
        """A thin request handler: queue the page's render (or find it queued)."""
        handle = render_report.queue(PAGES[i % len(PAGES)])
        return handle.id, handle.duplicate

    # The burst comes before the runner is up, so every run prints the same. With
    # the runner going, a request after a page's render finished queues a new one
    # (the page may have changed since): the key is held only while it waits or runs.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(request, range(args.requests)))
    renders = Counter(task_id for task_id, _ in answers)
    shared = sum(1 for _, duplicate in answers if duplicate)
    print(
        f"{args.requests} requests, {len(renders)} renders, {shared} found one queued"
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "workhorse", "runner", "--app", "tasks:app",
         "--concurrency", "4", "--no-packages"],
        cwd=HERE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for task_id in renders:  # what the page's polling script would fetch
            print(" ", app.get_task(task_id).wait(timeout=60).result)
    finally:
        runner.terminate()
        runner.wait()
    app.close()


if __name__ == "__main__":
    main()
