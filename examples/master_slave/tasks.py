"""Master/slave: a master task slices the work at run time and queues one child per slice.

The schedule stays coarse (one master per hour); each child handles a slice of ~100 items,
so a retry touches one slice, and the master's progress follows its children.
"""

from __future__ import annotations

import json
import os
import time

import workhorse

app = workhorse.App(os.environ.get("WORKHORSE_DATABASE_URL"))
SLICE = 100


@app.task(timeout=300)
def plan_import(total_items: int) -> dict[str, int]:
    """The master: decide the slices now, queue them as children in one transaction."""
    starts = range(0, total_items, SLICE)
    payloads = [json.dumps({"args": [s, min(s + SLICE, total_items)]}) for s in starts]
    children = workhorse.current_task().queue_children("import_slice", payloads)
    return {"slices": len(children)}


@app.task(retries=3, retries_delay=5, max_concurrency=4)
def import_slice(start: int, end: int) -> int:
    """A slave: import items [start, end)."""
    for i in range(start, end):
        if i % 25 == 0:
            workhorse.current_task().progress(
                int(100 * (i - start) / (end - start)), f"item {i}"
            )
        time.sleep(0.001)
    return end - start
