"""`create_app(settings, storage)`: the ASGI application.

    app = create_app(settings, storage)      # then serve it with uvicorn

Routes come from one table per API (IronWorker v2, IronMQ v3, native v1); every
handler runs through `endpoint.route_table`, which authenticates, rate-limits and
maps errors to `{"msg": ...}`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workhorse.api import hud, iron_mq_v3, iron_worker_v2, native_v1, openapi
from workhorse.api.auth import TokenAuth
from workhorse.api.config import ApiConfig
from workhorse.api.endpoint import Services, json_response, route_table
from workhorse.api.errors import http_exception, server_error
from workhorse.api.executor import Executor
from workhorse.api.group_commit import GroupCommit
from workhorse.api.limits import RateLimiter
from workhorse.api.waiter import Notifier
from workhorse.metrics import REQUESTS, api_of
from workhorse.settings import Settings
from workhorse.storage import Storage


def build_services(settings: Settings, storage: Storage, config: ApiConfig) -> Services:
    """The shared state of one application instance."""
    # Requests give up on a busy or unreachable database sooner than producers do:
    # a quick 503 with Retry-After beats a request hanging for the full budget.
    api_storage = Storage(
        storage.db,
        replace(settings, producer_retry_seconds=config.storage_retry_seconds),
    )
    executor = Executor(config.threads, retry_pause=config.retry_after_seconds)
    return Services(
        settings=settings,
        storage=api_storage,
        config=config,
        executor=executor,
        auth=TokenAuth(
            api_storage,
            executor,
            ttl=config.token_cache_seconds,
            failures_per_minute=config.auth_failures_per_minute,
        ),
        rate=RateLimiter(config.rate_per_second),
        notifier=Notifier(api_storage),
        writes=GroupCommit(
            api_storage, executor, in_flight=1 if storage.dialect == "sqlite" else 4
        ),
    )


class RequestMetrics:
    """Counts every HTTP request with its status and duration (`metrics.REQUESTS`,
    served by `workhorse server --metrics-port`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            REQUESTS.observe(
                api_of(scope["path"]),
                scope["method"],
                status,
                time.perf_counter() - began,
            )


def create_app(
    settings: Settings, storage: Storage, config: ApiConfig | None = None
) -> Starlette:
    """The HTTP API over an open storage (the caller keeps ownership of it)."""
    services = build_services(settings, storage, config or ApiConfig.from_env())
    document = openapi.document()

    async def spec(request: Request) -> Response:
        return json_response(document)

    async def health(request: Request) -> Response:
        return json_response({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            services.notifier.close()

    # One mount per API keeps route matching short: a request is compared with
    # its own API's routes only, the busiest first.
    routes = [
        Mount("/3", routes=route_table(services, iron_mq_v3.routes(), mount="/3")),
        Mount("/2", routes=route_table(services, iron_worker_v2.routes(), mount="/2")),
        Mount(
            "/v1",
            routes=[
                Route("/health", health, methods=["GET"]),
                *route_table(services, native_v1.routes(), mount="/v1"),
            ],
        ),
        Route("/openapi.json", spec, methods=["GET"]),
        *hud.routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestMetrics)],
        exception_handlers={HTTPException: http_exception, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.services = services
    return app
