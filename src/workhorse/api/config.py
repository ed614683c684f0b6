"""API settings: limits, thread pool and caches, from `WORKHORSE_API_*` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from workhorse.errors import InvalidInput

MIB = 1024 * 1024


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise InvalidInput(f"{name} must not be negative, got {raw!r}")
    return value


@dataclass(frozen=True)
class ApiConfig:
    """How the HTTP layer protects itself and the database.

    Attributes:
        threads: blocking database calls run on at most this many threads.
        max_body_bytes: largest JSON request body (413 above it).
        max_upload_bytes: largest code-upload request body.
        rate_per_second: requests per second allowed per token (0: no limit);
            bursts of twice as many are absorbed.
        auth_failures_per_minute: failed authentications allowed per client
            address before it gets 429.
        token_cache_seconds: how long a token check is reused; a revoked token
            stops working within this time.
        storage_retry_seconds: how long a request retries a busy or unreachable
            database before answering 503.
        retry_after_seconds: the Retry-After sent with 503 and used to pace
            probes of a database that is down.
        max_tasks_per_request: tasks or schedules in one POST.
        max_long_poll_seconds: the longest reservation `wait`.
    """

    threads: int = 16
    max_body_bytes: int = 8 * MIB
    max_upload_bytes: int = 128 * MIB
    rate_per_second: float = 10_000.0
    auth_failures_per_minute: float = 300.0
    token_cache_seconds: float = 5.0
    storage_retry_seconds: float = 2.0
    retry_after_seconds: int = 1
    max_tasks_per_request: int = 1000
    max_long_poll_seconds: int = 30

    @classmethod
    def from_env(cls, **overrides: object) -> ApiConfig:
        """Defaults, then `WORKHORSE_API_*` variables, then explicit overrides."""
        base = cls()
        base = replace(
            base,
            threads=max(1, int(_env_number("WORKHORSE_API_THREADS", base.threads))),
            max_body_bytes=int(
                _env_number("WORKHORSE_API_MAX_BODY_BYTES", base.max_body_bytes)
            ),
            max_upload_bytes=int(
                _env_number("WORKHORSE_API_MAX_UPLOAD_BYTES", base.max_upload_bytes)
            ),
            rate_per_second=_env_number(
                "WORKHORSE_API_RATE_LIMIT", base.rate_per_second
            ),
            auth_failures_per_minute=_env_number(
                "WORKHORSE_API_AUTH_FAILURES_PER_MINUTE", base.auth_failures_per_minute
            ),
            token_cache_seconds=_env_number(
                "WORKHORSE_API_TOKEN_CACHE_SECONDS", base.token_cache_seconds
            ),
            storage_retry_seconds=_env_number(
                "WORKHORSE_API_STORAGE_RETRY_SECONDS", base.storage_retry_seconds
            ),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]
