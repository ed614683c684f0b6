"""The request pipeline every route shares: auth, rate limit, body parsing, errors.

Handlers are `async def handler(ctx: Ctx) -> Response`; `route_table()` wraps them
so that authentication, the per-token rate limit and the mapping of exceptions to
`{"msg": ...}` responses happen in one place, without middleware.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from workhorse.api.auth import TokenAuth
from workhorse.api.config import ApiConfig
from workhorse.api.errors import JSON, ApiError, response_for
from workhorse.api.executor import Executor
from workhorse.api.group_commit import GroupCommit
from workhorse.api.limits import RateLimiter, read_body
from workhorse.api.waiter import Notifier
from workhorse.client import Client
from workhorse.settings import Settings
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

T = TypeVar("T")
Auth = Literal["project", "token", "none"]
MAX_CLIENTS = 1000
JSON_TYPES = ("application/json", "text/json")


@dataclass
class Services:
    """What handlers share: storage, limits, the thread pool, auth and notifications."""

    settings: Settings
    storage: Storage
    config: ApiConfig
    executor: Executor
    auth: TokenAuth
    rate: RateLimiter
    notifier: Notifier
    writes: GroupCommit
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, project_id: str) -> Client:
        """A task/code client for a project (kept, so its code cache is reused)."""
        found = self.clients.get(project_id)
        if found is None:
            if len(self.clients) >= MAX_CLIENTS:
                self.clients.clear()
            found = Client(self.storage, project_id=project_id, settings=self.settings)
            self.clients[project_id] = found
        return found


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A compact JSON response."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def msg(text: str, status: int = 200) -> Response:
    """`{"msg": text}`."""
    return json_response({"msg": text}, status)


class Ctx:
    """One request as handlers see it."""

    def __init__(
        self, request: Request, services: Services, project_id: str | None
    ) -> None:
        self.request = request
        self.services = services
        self.project_id = project_id or ""

    @property
    def client(self) -> Client:
        """The task/code client of the authenticated project."""
        return self.services.client(self.project_id)

    @property
    def storage(self) -> Storage:
        """The API's storage handle (short retry budget)."""
        return self.services.storage

    @property
    def config(self) -> ApiConfig:
        """API limits."""
        return self.services.config

    def path(self, name: str) -> str:
        """A path parameter."""
        return str(self.request.path_params[name])

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking core call on the API's thread pool."""
        return await self.services.executor.run(fn, *args, **kwargs)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        """`work(tx)` in a transaction shared with concurrent writes (group commit)."""
        return await self.services.writes.run(work)

    async def body(self, limit: int | None = None) -> bytes:
        """The raw body, at most `limit` bytes (default: the JSON body limit)."""
        return await read_body(self.request, limit or self.config.max_body_bytes)

    async def json(self) -> Any:
        """The JSON body; an empty body reads as `{}`.

        406 when a body comes with a Content-Type other than JSON, 400 when it
        does not parse.
        """
        raw = await self.body()
        if not raw.strip():
            return {}
        ctype = self.request.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        if media and media not in JSON_TYPES and not media.endswith("+json"):
            raise ApiError(406, "Content-Type must be application/json")
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ApiError(400, "Invalid JSON in request body") from None

    async def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        data = await self.json()
        if not isinstance(data, dict):
            raise ApiError(400, "Request body must be a JSON object")
        return data

    def query(self, name: str) -> str | None:
        """A query parameter, or None."""
        return self.request.query_params.get(name)

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        """A whole-number query parameter within [low, high] (400 otherwise)."""
        raw = self.request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ApiError(400, f"{name} must be a number") from None
        if not math.isfinite(value) or value != int(value) or not low <= value <= high:
            raise ApiError(400, f"{name} must be a whole number from {low} to {high}")
        return int(value)


Handler = Callable[[Ctx], Awaitable[Response]]


def endpoint(
    services: Services, handler: Handler, auth: Auth
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with auth, rate limiting and error mapping."""
    retry_after = services.config.retry_after_seconds

    async def run(request: Request) -> Response:
        try:
            project_id: str | None = None
            if auth != "none":
                wanted = (
                    request.path_params.get("project_id") if auth == "project" else None
                )
                project_id, digest = await services.auth.authenticate(request, wanted)
                if services.rate.enabled:
                    services.rate.check(digest)
            return await handler(Ctx(request, services, project_id))
        except Exception as exc:  # every failure leaves as {"msg": ...}
            return response_for(exc, retry_after)

    return run


def route_table(
    services: Services,
    table: Sequence[tuple[str, Sequence[str], Handler, Auth]],
    *,
    mount: str = "",
) -> list[Route]:
    """Starlette routes from (path, methods, handler, auth) rows.

    Rows with the same path become one route that dispatches on the method, so
    a wrong verb gets 405 with every allowed method in `Allow`.

    Args:
        mount: a prefix the rows' paths start with, removed because the routes
            are mounted under it.
    """
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for path, methods, handler, auth in table:
        wrapped = endpoint(services, handler, auth)
        for method in methods:
            by_path.setdefault(path.removeprefix(mount), {})[method] = wrapped
            if method == "GET":
                by_path[path.removeprefix(mount)]["HEAD"] = wrapped
    return [
        Route(path, _dispatch(handlers), methods=list(handlers))
        for path, handlers in by_path.items()
    ]


def _dispatch(
    handlers: dict[str, Callable[[Request], Awaitable[Response]]],
) -> Callable[[Request], Awaitable[Response]]:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def run(request: Request) -> Response:
        return await handlers[request.method](request)

    return run
