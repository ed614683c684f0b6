"""Serving the API with uvicorn: in the foreground (`server`) or on a thread (`up`).

The listening socket is bound by the caller's thread, so "address already in use"
surfaces as an ordinary OSError instead of a server thread dying quietly.
Tokens sent as `?oauth=` are masked in uvicorn's access log.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable

import uvicorn

from workhorse.api.app import create_app
from workhorse.api.config import ApiConfig
from workhorse.settings import Settings
from workhorse.storage import Storage

log = logging.getLogger(__name__)

_OAUTH = re.compile(r"(?i)(oauth=)[^&\s]*")
SHUTDOWN_GRACE_SECONDS = 3


def mask_tokens(text: str) -> str:
    """`...?oauth=SECRET&x=1` -> `...?oauth=***&x=1`."""
    return _OAUTH.sub(r"\1***", text)


class MaskTokens(logging.Filter):
    """Removes `oauth=` values from access-log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments in place; never drops a record."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                mask_tokens(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.msg, str):
            record.msg = mask_tokens(record.msg)
        return True


def _install_mask() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, MaskTokens) for f in access.filters):
        access.addFilter(MaskTokens())


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets
    # that say they are TCP, and without it every response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(
    settings: Settings,
    storage: Storage,
    *,
    access_log: bool,
    config: ApiConfig | None = None,
    log_level: str = "info",
) -> uvicorn.Config:
    """The uvicorn configuration for the API app."""
    app = create_app(settings, storage, config)
    cfg = uvicorn.Config(
        app,
        access_log=access_log,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        lifespan="on",
    )
    _install_mask()
    return cfg


class ApiServer:
    """The API on a background thread (used by `workhorse up`)."""

    def __init__(
        self,
        settings: Settings,
        storage: Storage,
        *,
        host: str,
        port: int,
        access_log: bool = False,
        config: ApiConfig | None = None,
        log_level: str = "warning",
    ) -> None:
        self.host = host
        self.sock = bind(host, port)
        self.port = int(self.sock.getsockname()[1])
        cfg = uvicorn_config(
            settings, storage, access_log=access_log, config=config, log_level=log_level
        )
        self.server = uvicorn.Server(cfg)
        self._thread = threading.Thread(
            target=self._run, name="api-server", daemon=True
        )
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Where the API listens."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:
            self._error = exc
            log.exception(
                "API server stopped with an error", extra={"event": "api_crashed"}
            )

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; returns once the server accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start: {self._error!r}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish in-flight requests, and close."""
        self.server.should_exit = True
        self._thread.join(timeout)
        self.sock.close()


def serve(
    settings: Settings,
    storage: Storage,
    *,
    host: str,
    port: int,
    access_log: bool = True,
    config: ApiConfig | None = None,
    on_started: Callable[[int], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully (exit status 0)."""
    server = ApiServer(
        settings,
        storage,
        host=host,
        port=port,
        access_log=access_log,
        config=config,
        log_level="info",
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        server.start()
        if on_started is not None:
            on_started(server.port)
        stop.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
