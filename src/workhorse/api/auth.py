"""Token authentication: `Authorization: OAuth <token>` or `?oauth=<token>`.

Tokens are looked up by their SHA-256 hash and the answer (project id, or "no
such token") is cached in this process for `token_cache_seconds`, so the hot path
does no database read; a revoked token stops working within that time. Failed
attempts are limited per client address (429 once exhausted).
"""

from __future__ import annotations

import time

from starlette.requests import Request

from workhorse.api.errors import ApiError
from workhorse.api.executor import Executor
from workhorse.api.limits import RateLimiter
from workhorse.storage import Storage
from workhorse.storage.projects import hash_token

MAX_CACHED = 10_000
SCHEMES = ("oauth", "bearer")


def token_from(request: Request) -> str | None:
    """The token of a request: the Authorization header first, then `?oauth=`."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() in SCHEMES and value.strip():
            return value.strip()
    query = request.query_params.get("oauth")
    return query.strip() if query and query.strip() else None


class TokenAuth:
    """Resolves tokens to projects, with a short-lived cache and a failure limit."""

    def __init__(
        self,
        storage: Storage,
        executor: Executor,
        *,
        ttl: float,
        failures_per_minute: float,
    ) -> None:
        self.storage = storage
        self.executor = executor
        self.ttl = ttl
        self.failures = RateLimiter(
            failures_per_minute / 60.0, burst=max(1.0, failures_per_minute)
        )
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def project_of(self, token: str, digest: str | None = None) -> str | None:
        """The project of an active token, or None (cached for `ttl` seconds)."""
        digest = digest or hash_token(token)
        cached = self._fresh(digest)
        if cached is not None:
            return cached[0]
        project = await self.executor.run(self._lookup, token)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[digest] = (project, time.monotonic() + self.ttl)
        return project

    def _fresh(self, digest: str) -> tuple[str | None, float] | None:
        cached = self._cache.get(digest)
        return cached if cached is not None and cached[1] > time.monotonic() else None

    def _lookup(self, token: str) -> str | None:
        return self.storage.run(lambda tx: tx.projects.project_of(token), write=False)

    def forget(self) -> None:
        """Drop every cached answer (tests, or after revoking from this process)."""
        self._cache.clear()

    async def authenticate(
        self, request: Request, project_id: str | None
    ) -> tuple[str, str]:
        """(the token's project, the token's hash); 401 when missing, unknown, or
        for another project.

        Args:
            project_id: the project named in the path, if any; the token must
                belong to it.
        """
        client = request.client.host if request.client else "unknown"
        token = token_from(request)
        if token is None:
            self._failed(client)
            raise ApiError(
                401,
                "Missing token: send 'Authorization: OAuth <token>' or ?oauth=<token>",
            )
        digest = hash_token(token)
        cached = self._fresh(digest)
        if cached is None or cached[0] is None:
            wait = self.failures.wait_time(client)
            if wait > 0:
                raise ApiError(
                    429,
                    "Too many failed authentications; retry later.",
                    {"Retry-After": str(max(1, int(wait) + 1))},
                )
        project = (
            cached[0] if cached is not None else await self.project_of(token, digest)
        )
        if project is None:
            self._failed(client)
            raise ApiError(401, "Invalid token")
        if project_id is not None and project != project_id:
            self._failed(client)
            raise ApiError(401, "Token is not valid for this project")
        return project, digest

    def _failed(self, client: str) -> None:
        self.failures.take(client)
