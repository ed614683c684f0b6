"""Continuous stream: queue-size alerts start more consumers as the backlog grows.

    python examples/continuous_stream/run.py

- A producer posts bursts of messages to the `events` queue.
- A progressive alert on `events` posts to the control queue `events-scale` each
  time the backlog grows past another multiple of 100.
- A scaler consumes `events-scale` and queues one `consume_events` task per alert.
- Each `consume_events` task is a long-lived consumer: it reserves, handles and
  deletes messages until `events` stays empty, then ends (a task should not run
  forever; the next alert starts a fresh one).
- A runner runs the tasks and, through its pusher, evaluates the alerts.

Here everything runs in one process on a throwaway SQLite file. In production the
runner is `workhorse runner --app examples.continuous_stream.run:app` on any number
of hosts, and producers and the scaler are your own services.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import workhorse
from workhorse.domain.message import Message
from workhorse.worker.worker import Worker, WorkerConfig

SCRATCH = Path(tempfile.mkdtemp(prefix="workhorse-stream-"))
DATABASE_URL = (
    os.environ.get("WORKHORSE_DATABASE_URL") or f"sqlite:///{SCRATCH / 'stream.db'}"
)
BURSTS, BURST_SIZE, TRIGGER, MAX_CONSUMERS = 6, 100, 100, 4

app = workhorse.App(DATABASE_URL)
events = app.queues["events"]
control = app.queues["events-scale"]
handled: Counter[str] = Counter()
handled_lock = threading.Lock()
started = Counter[str]()


@app.task(timeout=600)
def consume_events(alert: dict) -> int:  # type: ignore[type-arg]
    """One consumer: drain `events`, then end (handlers must be idempotent)."""
    me = threading.current_thread().name

    def handle(message: Message) -> None:
        time.sleep(0.01)  # the work for one event
        with handled_lock:
            handled[me] += 1

    return events.consume(handle, batch=10, wait=2, stop_when_idle=True)


def scale(message: Message) -> None:
    """Start another consumer for each alert, up to MAX_CONSUMERS at once."""
    alert = json.loads(message.body)
    running = sum(
        1
        for _, t in app.client.list(code_name="consume_events")
        if not t.status.is_final
    )
    if running >= MAX_CONSUMERS:
        print(f"alert at {alert['queue_size']} messages: already {running} consumers")
        return
    consume_events.queue(alert)
    started["consumers"] += 1
    print(
        f"alert at {alert['queue_size']} messages: "
        f"starting consumer #{started['consumers']}"
    )


def main() -> None:
    events.create(
        message_timeout=30,
        alerts=[
            {
                "type": "progressive",
                "direction": "asc",
                "trigger": TRIGGER,
                "queue": control.name,
            }
        ],
    )
    control.create()
    app.register_all()
    runner = Worker(
        app.storage,
        registry=app.registry,
        config=WorkerConfig(
            concurrency=MAX_CONSUMERS, packages=False, cache_dir=SCRATCH / "cache"
        ),
    )
    runner.start()
    scaler = control.consumer(scale, wait=1)
    scaler.start()
    try:
        for burst in range(BURSTS):
            events.post(
                [json.dumps({"burst": burst, "n": i}) for i in range(BURST_SIZE)]
            )
            print(f"posted burst {burst + 1}/{BURSTS}: backlog {events.size}")
            time.sleep(0.5)
        while sum(handled.values()) < BURSTS * BURST_SIZE:
            time.sleep(0.2)
    finally:
        scaler.stop()
        scaler.join(5)
        runner.stop(grace=10)
        app.close()
    print(f"\nhandled {sum(handled.values())} events with {len(handled)} consumers:")
    for name, count in sorted(handled.items()):
        print(f"  {name}: {count}")


if __name__ == "__main__":
    main()
