"""Prometheus metrics for the long-running commands (`runner`, `server`, `up`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from workhorse.storage import Storage
    from workhorse.worker.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])


def metrics_options(fn: F) -> F:
    """--metrics-port and --metrics-addr."""
    fn = click.option(
        "--metrics-addr",
        default="127.0.0.1",
        show_default=True,
        envvar="WORKHORSE_METRICS_ADDR",
        help="address the metrics listen on",
    )(fn)
    return click.option(
        "--metrics-port",
        default=None,
        type=click.IntRange(0, 65535),
        envvar="WORKHORSE_METRICS_PORT",
        help="serve Prometheus metrics at http://ADDR:PORT/metrics (0: any free port)",
    )(fn)


def serve_metrics(
    port: int | None,
    addr: str,
    *,
    worker: Worker | None = None,
    storage: Storage | None = None,
    requests: bool = False,
) -> list[str]:
    """Serve, when `port` is given, the metrics of what this process runs: a
    runner's (`worker`), the database's backlog (`storage`), the HTTP API's
    requests, and the process's own (CPU, memory, open files). The banner lines
    saying where."""
    if port is None:
        return []
    from prometheus_client import CollectorRegistry, ProcessCollector

    from workhorse.metrics import Depth, DepthCollector, RequestCollector, serve

    registry = CollectorRegistry()
    if worker is not None:
        registry.register(worker.collector())
    if storage is not None:
        db = storage

        def read() -> Depth:
            return db.run(
                lambda tx: Depth(tx.tasks.depth(), tx.messages.depth()),
                write=False,
                retry_for=0,
            )

        registry.register(DepthCollector(read))
    if requests:
        registry.register(RequestCollector())
    ProcessCollector(registry=registry)
    bound = serve(registry, port, addr)
    return [f"  metrics: http://{addr}:{bound}/metrics"]
