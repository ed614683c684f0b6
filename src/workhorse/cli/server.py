"""`workhorse server`: the HTTP API alone; also starts the API inside `workhorse up`.

The CLI and the API are independent layers, so the API is loaded by module name
(`workhorse.api.server`) at run time rather than imported: an installation
without the API still runs every other command.
"""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

import click

from workhorse.cli.common import Context, handle_errors, pass_ctx
from workhorse.cli.metrics import metrics_options
from workhorse.cli.projects import bootstrap, iron_json
from workhorse.errors import WorkhorseError

F = TypeVar("F", bound=Callable[..., Any])
API_MODULE = "workhorse.api.server"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def api_module() -> ModuleType:
    """The API's serving module."""
    try:
        return importlib.import_module(API_MODULE)
    except ImportError as exc:
        raise WorkhorseError(f"the HTTP API is not available: {exc}") from None


def api_options(fn: F) -> F:
    """--host and --port."""
    fn = click.option(
        "--port",
        envvar="WORKHORSE_PORT",
        default=DEFAULT_PORT,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="API port (0: any free port)",
    )(fn)
    return click.option(
        "--host",
        envvar="WORKHORSE_HOST",
        default=DEFAULT_HOST,
        show_default=True,
        help="API address; keep 127.0.0.1 unless a TLS proxy sits in front",
    )(fn)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_banner(ctx: Context, url: str, host: str, port: int) -> list[str]:
    """Banner lines: where the API is, and the first token if it was just created."""
    lines = [
        f"{click.style('API', fg='green', bold=True)} {url}  "
        "(IronWorker v2, IronMQ v3, /v1, /openapi.json)",
        f"  HUD: {url}/hud (sign in with a project id and token)",
    ]
    minted = bootstrap(ctx.storage)
    if minted is not None:
        project_id, token = minted
        lines += [
            f"  first start: created project {click.style(project_id, bold=True)} and a token "
            "(shown only now):",
            f"  {click.style(token, bold=True)}",
            "  iron.json for the Iron clients:",
            *(
                "    " + line
                for line in iron_json(project_id, token, host, port).splitlines()
            ),
        ]
    else:
        lines.append(
            "  tokens: workhorse token create [--project ID]   |   workhorse token list"
        )
    if not _is_loopback(host):
        lines.append(
            click.style(
                f"  warning: listening on {host}; put a TLS proxy in front, "
                "tokens travel in clear text over plain HTTP",
                fg="yellow",
                bold=True,
            )
        )
    return lines


class RunningApi:
    """The API on a thread, for `workhorse up`."""

    def __init__(self, handle: Any, banner: list[str]) -> None:
        self.handle = handle
        self.banner = banner

    def stop(self) -> None:
        """Stop serving."""
        self.handle.stop()


def start_api(ctx: Context, host: str, port: int) -> RunningApi:
    """Start the API in this process (used by `workhorse up`)."""
    module = api_module()
    try:
        handle = module.ApiServer(ctx.settings, ctx.storage, host=host, port=port)
    except OSError as exc:
        raise WorkhorseError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    handle.start()
    return RunningApi(handle, api_banner(ctx, handle.url, host, handle.port))


@click.command()
@api_options
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="log each request (tokens in ?oauth= are masked)",
)
@metrics_options
@pass_ctx
@handle_errors
def server(
    ctx: Context,
    /,
    *,
    host: str,
    port: int,
    access_log: bool,
    metrics_port: int | None,
    metrics_addr: str,
) -> None:
    """Serve the HTTP API only (run tasks with `workhorse runner`)."""
    from workhorse.cli.metrics import serve_metrics

    ctx.storage.migrate()
    module = api_module()
    metrics = serve_metrics(
        metrics_port, metrics_addr, storage=ctx.storage, requests=True
    )

    def started(bound_port: int) -> None:
        url = f"http://{host}:{bound_port}"
        for line in [*api_banner(ctx, url, host, bound_port), *metrics]:
            click.echo(line)

    try:
        module.serve(
            ctx.settings,
            ctx.storage,
            host=host,
            port=port,
            access_log=access_log,
            on_started=started,
        )
    except OSError as exc:
        raise WorkhorseError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
