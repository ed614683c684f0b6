"""Long-poll wake-up latency of the peers, in the shape bench_queues.py measures
Workhorse: a consumer process blocks waiting for a message, another process
publishes one 10-30 ms later; latency runs from the publish call to the moment
the consumer has the message. Runs in /tmp/mqbenchvenv against the brokers of
../shared/bench/mq/services.sh.

    python bench/mqpeers_latency.py redis --samples 200    # LPUSH / BLMOVE (+ LREM), AOF always
    python bench/mqpeers_latency.py rabbit --samples 200   # confirmed publish / prefetch 1

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path
from typing import Any

REDIS_PORT = int(os.environ.get("MQBENCH_REDIS_PORT", "56380"))
RABBIT_PORT = int(os.environ.get("MQBENCH_RABBIT_PORT", "56720"))
QUEUE = "mqbench_latency"
PROCESSING = "mqbench_latency:processing"


def payload(i: int) -> bytes:
    head = b"%012d %020d " % (i, time.monotonic_ns())
    return head + b"x" * (100 - len(head))


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# -- Redis ---------------------------------------------------------------------------


def redis_client() -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=REDIS_PORT)


def redis_consumer(samples: int, conn: Any) -> None:
    r = redis_client()
    r.ping()
    for _ in range(samples):
        conn.send("waiting")
        m = r.blmove(QUEUE, PROCESSING, 5, src="RIGHT", dest="LEFT")
        t = time.monotonic_ns()
        if m is not None:
            r.lrem(PROCESSING, -1, m)
        conn.send((t, int(m is not None)))


def redis_publish() -> Any:
    r = redis_client()
    r.delete(QUEUE, PROCESSING)
    info = r.info("server")
    fsync = r.config_get("appendfsync")["appendfsync"]
    meta = {
        "versions": {"redis": info["redis_version"]},
        "durability": f"AOF appendfsync {fsync}",
        "shape": "consumer BLMOVE (then LREM); producer LPUSH, 1 round trip",
    }
    return (lambda i: r.lpush(QUEUE, payload(i))), meta


# -- RabbitMQ --------------------------------------------------------------------------


def rabbit_params() -> Any:
    import pika

    return pika.ConnectionParameters(host="127.0.0.1", port=RABBIT_PORT, heartbeat=0)


def rabbit_consumer(samples: int, conn: Any) -> None:
    import pika

    connection = pika.BlockingConnection(rabbit_params())
    ch = connection.channel()
    ch.basic_qos(prefetch_count=1)
    stream = ch.consume(QUEUE, inactivity_timeout=5)
    for _ in range(samples):
        conn.send("waiting")
        method, _props, _body = next(stream)
        t = time.monotonic_ns()
        if method is not None:
            ch.basic_ack(method.delivery_tag)
        conn.send((t, int(method is not None)))
    connection.close()


def rabbit_publish() -> Any:
    import pika

    connection = pika.BlockingConnection(rabbit_params())
    ch = connection.channel()
    ch.queue_delete(QUEUE)
    ch.queue_declare(QUEUE, durable=True)
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)
    version = connection._impl.server_properties.get("version")
    version = version.decode() if isinstance(version, bytes) else version
    meta = {
        "versions": {"rabbitmq": version, "pika": pika.__version__},
        "durability": "classic durable queue, delivery_mode=2, publisher confirms",
        "shape": "consumer basic_consume prefetch 1 (ack each); producer publish, wait for confirm",
    }
    return (lambda i: ch.basic_publish("", QUEUE, payload(i), props)), meta


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("broker", choices=["redis", "rabbit"])
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    publish, meta = (redis_publish if args.broker == "redis" else rabbit_publish)()
    consumer_fn = redis_consumer if args.broker == "redis" else rabbit_consumer
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    consumer = ctx.Process(target=consumer_fn, args=(args.samples, a), daemon=True)
    consumer.start()
    rng = random.Random(7)
    lat, pub_ms = [], []
    for i in range(args.samples):
        b.recv()
        time.sleep(rng.uniform(0.010, 0.030))
        t0 = time.monotonic_ns()
        publish(i)
        t1 = time.monotonic_ns()
        t_got, got = b.recv()
        pub_ms.append((t1 - t0) / 1e6)
        if got:
            lat.append((t_got - t0) / 1e6)
    consumer.join(10)
    p50 = pct(lat, 50)
    print(
        json.dumps(
            {
                **meta,
                "samples": len(lat),
                "missed": args.samples - len(lat),
                "p50_ms": p50,
                "p90_ms": pct(lat, 90),
                "p99_ms": pct(lat, 99),
                "max_ms": max(lat) if lat else None,
                "post_call_p50_ms": pct(pub_ms, 50),
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
