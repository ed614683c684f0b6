"""Every error leaves as JSON `{"msg": ...}` with a status code and a Content-Type."""

from __future__ import annotations

import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from workhorse.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StaleLease,
    StorageCorrupt,
    StorageUnavailable,
    WorkhorseError,
)

log = logging.getLogger(__name__)

JSON = "application/json"


class ApiError(Exception):
    """An HTTP error with its wire message."""

    def __init__(
        self, status: int, msg: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.headers = headers or {}


def error_response(
    status: int, msg: str, headers: dict[str, str] | None = None
) -> Response:
    """The one shape of every error."""
    body = json.dumps({"msg": msg}, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type=JSON, headers=headers)


# Most specific first: PayloadTooLarge is an InvalidInput, StaleLease a Conflict.
STATUSES: tuple[tuple[type[WorkhorseError], int], ...] = (
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (NotFound, 404),
    (StaleLease, 403),
    (Conflict, 409),
    (StorageUnavailable, 503),
)


def status_of(exc: WorkhorseError) -> int:
    """The status code a core error maps to."""
    for kind, status in STATUSES:
        if isinstance(exc, kind):
            return status
    return 500


def response_for(exc: BaseException, retry_after: int = 1) -> Response:
    """Turn any exception raised while handling a request into an error response."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.msg, exc.headers)
    if isinstance(exc, StorageUnavailable):
        log.warning(
            "database unavailable: %s", exc, extra={"event": "api_storage_unavailable"}
        )
        return error_response(
            503,
            "Service temporarily unavailable: the database cannot be reached; "
            "retry shortly.",
            {"Retry-After": str(retry_after)},
        )
    if isinstance(exc, StorageCorrupt):  # logged where it was found
        return error_response(
            500,
            "Internal server error: the database reports damaged data; the request "
            "changed nothing. The operator should run `workhorse check`.",
        )
    if isinstance(exc, WorkhorseError):
        status = status_of(exc)
        if status < 500:
            return error_response(status, str(exc))
    log.exception("unhandled error in API request", extra={"event": "api_error"})
    return error_response(500, "Internal server error")


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong verb) as JSON."""
    if not isinstance(exc, HTTPException):
        return response_for(exc)
    messages = {404: "Not found", 405: "Method not allowed"}
    msg = messages.get(exc.status_code) or str(exc.detail)
    return error_response(exc.status_code, msg, dict(exc.headers or {}))


async def server_error(request: Request, exc: Exception) -> Response:
    """Last resort for anything that escaped a handler."""
    return response_for(exc)
