"""The worker pattern for web apps: requests only queue, pages are built by runners.

`render_report` is unique by its arguments: while one is queued or running for a given
page, every other request for that page gets a handle on the same task instead of
queueing another. It calls a (pretend) third-party API allowed 20 calls a second, so it
is rate-limited across every runner.
"""

from __future__ import annotations

import os
import time

import workhorse

app = workhorse.App(os.environ.get("WORKHORSE_DATABASE_URL"))


@app.task(unique=True, rate_limit="20/s", retries=2)
def render_report(page: str) -> str:
    """Build one page's fragment (the slow part a request must not wait on)."""
    time.sleep(0.2)  # the third-party call
    return f"<section>{page}: rendered at {time.strftime('%H:%M:%S')}</section>"
