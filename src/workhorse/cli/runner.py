"""`workhorse runner` and `workhorse up`: run tasks until told to stop."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import click

from workhorse.app import App
from workhorse.cli.common import Context, handle_errors, pass_ctx
from workhorse.cli.metrics import metrics_options, serve_metrics
from workhorse.cli.server import api_options, start_api
from workhorse.errors import InvalidInput
from workhorse.worker.registry import Registry
from workhorse.worker.worker import Worker, WorkerConfig


def load_app(spec: str) -> App:
    """Import `module:attribute` (the current directory is importable)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidInput(
            f"--app takes module:attribute, e.g. tasks:app (got {spec!r})"
        )
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(f"cannot import {module_name!r}: {exc}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise InvalidInput(f"{spec} is not a workhorse.App")
    return app


def run_worker(ctx: Context, /, worker: Worker, banner: list[str]) -> None:
    """Start, print the banner, wait for SIGINT/SIGTERM, then stop gracefully."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            if (
                signum == signal.SIGINT
            ):  # a second Ctrl-C: do not wait for running tasks
                click.secho("second Ctrl-C: stopping now", fg="red")
                os._exit(1)
            return
        click.secho(
            f"{signal.Signals(signum).name}: finishing running tasks...", fg="yellow"
        )
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    worker.start()
    for line in banner:
        click.echo(line)
    stop.wait()
    worker.stop()
    click.echo("stopped")


def _worker_for(ctx: Context, /, app_spec: str | None, config: WorkerConfig) -> Worker:
    if app_spec:
        url = ctx.settings.database_url
        if ctx.database_url_given:
            # An App() that names no database takes it from here, as do the
            # processes the runner starts.
            os.environ["WORKHORSE_DATABASE_URL"] = url
        app = load_app(app_spec)
        if app.settings.database_url != url:
            if ctx.database_url_given:
                raise InvalidInput(
                    f"{app_spec} uses the database {app.settings.database_url}, but "
                    f"--database-url (or WORKHORSE_DATABASE_URL) says {url}: "
                    "name one database"
                )
            ctx.settings = app.settings  # the app's own choice, over the default
        app.register_all()
        return Worker(app.storage, registry=app.registry, config=config)
    return Worker(ctx.storage, registry=Registry(), config=config)


def _describe(worker: Worker, ctx: Context) -> list[str]:
    names = worker.registry.names()
    sandbox = worker.process.launcher.name
    lines = [
        f"{click.style(f'runner {worker.id}', fg='green', bold=True)} "
        f"on {ctx.settings.database_url}",
        f"  concurrency {worker.config.concurrency}, cluster {worker.config.cluster!r}",
        f"  Python tasks: {', '.join(names) if names else 'none (pass --app module:app)'}",
        f"  code packages: {'yes, ' + sandbox if worker.config.packages else 'no'}",
    ]
    if worker.config.packages:
        lines.append(f"  sandbox: {worker.process.launcher.describe()}")
    if worker.config.packages and sandbox == "process":
        lines.append(
            click.style(
                "  warning: no sandbox; code packages run as plain child processes",
                fg="yellow",
                bold=True,
            )
        )
    return lines


runner_options = [
    click.option(
        "--app", "app_spec", default=None, help="module:attribute of a workhorse.App"
    ),
    click.option(
        "-c",
        "--concurrency",
        default=8,
        show_default=True,
        type=click.IntRange(1, 1024),
    ),
    click.option(
        "--prefetch",
        default=None,
        type=click.IntRange(0, 1000),
        help="tasks claimed ahead of free threads (default: adapts to task run time)",
    ),
    click.option("--cluster", default="default", show_default=True),
    click.option(
        "--packages/--no-packages",
        default=True,
        show_default=True,
        help="run code packages (child processes) too",
    ),
    click.option(
        "--shutdown-grace",
        default=30.0,
        show_default=True,
        type=float,
        help="seconds running tasks get to finish on SIGTERM",
    ),
    click.option(
        "--cache-dir",
        default=Path("var") / "cache" / "code",
        type=click.Path(path_type=Path),
    ),
]


def with_runner_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Attach the runner options."""
    for option in reversed(runner_options):
        fn = option(fn)
    return fn


def _config(**kw: object) -> WorkerConfig:
    return WorkerConfig(
        concurrency=kw["concurrency"],  # type: ignore[arg-type]
        prefetch=kw["prefetch"],  # type: ignore[arg-type]
        cluster=kw["cluster"],  # type: ignore[arg-type]
        packages=kw["packages"],  # type: ignore[arg-type]
        shutdown_grace=kw["shutdown_grace"],  # type: ignore[arg-type]
        cache_dir=kw["cache_dir"],  # type: ignore[arg-type]
    )


@click.command()
@with_runner_options
@metrics_options
@pass_ctx
@handle_errors
def runner(
    ctx: Context,
    /,
    *,
    app_spec: str | None,
    metrics_port: int | None,
    metrics_addr: str,
    **kw: object,
) -> None:
    """Claim and run tasks (any number of runners may share one database)."""
    worker = _worker_for(ctx, app_spec, _config(**kw))
    metrics = serve_metrics(metrics_port, metrics_addr, worker=worker)
    run_worker(ctx, worker, [*_describe(worker, ctx), *metrics])


@click.command()
@with_runner_options
@api_options
@metrics_options
@pass_ctx
@handle_errors
def up(
    ctx: Context,
    /,
    *,
    app_spec: str | None,
    host: str,
    port: int,
    metrics_port: int | None,
    metrics_addr: str,
    **kw: object,
) -> None:
    """Everything on one machine: migrate, then run a runner and the HTTP API."""
    ctx.storage.migrate()
    worker = _worker_for(ctx, app_spec, _config(**kw))
    metrics = serve_metrics(
        metrics_port, metrics_addr, worker=worker, storage=worker.storage, requests=True
    )
    api = start_api(ctx, host, port)
    banner = [
        *_describe(worker, ctx),
        *metrics,
        *api.banner,
        "",
        "Queue a task:  workhorse task queue CODE --payload '{...}'",
        "Watch:         workhorse status   |   workhorse task list",
        "Stop:          Ctrl-C",
    ]
    try:
        run_worker(ctx, worker, banner)
    finally:
        api.stop()
