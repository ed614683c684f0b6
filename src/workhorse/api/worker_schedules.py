"""IronWorker v2 schedules: create (bulk), list, get, update, cancel.

Built on `workhorse.schedules.ScheduleClient` with Iron's 60-second minimum
`run_every`. Iron sentinels are read as "unset": `run_times: 0`, `priority: -3`,
`timeout: 0`, Go's zero time `0001-01-01T00:00:00Z`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from workhorse.api.endpoint import Ctx, json_response, msg
from workhorse.api.errors import ApiError
from workhorse.api.wire import (
    as_int,
    as_number,
    as_str,
    parse_time,
    payload_text,
    required_str,
    rfc3339,
)
from workhorse.api.worker_tasks import task_items
from workhorse.domain.schedule import ScheduleInfo
from workhorse.errors import NotFound
from workhorse.schedules import IRON_MIN_RUN_EVERY, ScheduleClient

# Fields a client may change with PUT /schedules/{id}.
UPDATABLE = (
    "run_every",
    "cron",
    "timezone",
    "start_at",
    "end_at",
    "run_times",
    "priority",
    "timeout",
    "delay",
    "label",
    "cluster",
    "name",
    "max_concurrency",
    "payload",
)


def schedules_of(ctx: Ctx) -> ScheduleClient:
    """The schedule client of the request's project, with Iron's rules."""
    return ScheduleClient(ctx.client, min_run_every=IRON_MIN_RUN_EVERY)


def _positive_int(value: Any, name: str) -> int | None:
    number = as_int(value, name)
    return number if number is not None and number > 0 else None


def _priority(value: Any) -> int | None:
    priority = as_int(value, "priority")
    return None if priority is None or priority < 0 else priority


def _timeout(value: Any) -> int | None:
    timeout = as_number(value, "timeout")
    return math.ceil(timeout) if timeout and timeout > 0 else None


# Iron field -> how to read it. Fields a client leaves out are not passed on.
CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "run_every": lambda v: as_number(v, "run_every") or None,
    "cron": lambda v: as_str(v, "cron"),
    "timezone": lambda v: as_str(v, "timezone"),
    "label": lambda v: as_str(v, "label"),
    "name": lambda v: as_str(v, "name"),
    "start_at": lambda v: parse_time(v, "start_at"),
    "end_at": lambda v: parse_time(v, "end_at"),
    "run_times": lambda v: _positive_int(v, "run_times"),
    "priority": _priority,
    "timeout": _timeout,
    "delay": lambda v: max(as_number(v, "delay") or 0.0, 0.0),
    "cluster": lambda v: as_str(v, "cluster") or "default",
    "max_concurrency": lambda v: _positive_int(v, "max_concurrency"),
}
# A null for these means "leave it", not "clear it".
KEEP_WHEN_NULL = ("run_every", "timezone")


def schedule_fields(item: dict[str, Any]) -> dict[str, Any]:
    """`ScheduleClient` keyword arguments from an Iron schedule (given keys only)."""
    fields: dict[str, Any] = {}
    for name, convert in CONVERTERS.items():
        if name not in item:
            continue
        value = convert(item[name])
        if value is None and name in KEEP_WHEN_NULL:
            continue
        fields[name] = value
    return fields


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    """A schedule as IronWorker v2 shows it."""
    data: dict[str, Any] = {
        "id": info.id,
        "project_id": info.project_id,
        "code_name": info.code_name,
        "name": info.name,
        "payload": info.payload,
        "status": info.status.value,
        "created_at": rfc3339(info.created_at),
        "updated_at": rfc3339(info.updated_at),
        "start_at": rfc3339(info.start_at),
        "end_at": rfc3339(info.end_at),
        "next_start": rfc3339(info.next_start),
        "last_run_time": rfc3339(info.last_run_time),
        "run_every": None if info.run_every is None else round(info.run_every),
        "cron": info.cron,
        "timezone": info.timezone,
        "run_times": info.run_times,
        "run_count": info.run_count,
        "error_count": info.error_count,
        "skip_count": info.skip_count,
        "msg": info.msg,
        "priority": info.priority,
        "timeout": info.timeout,
        "task_delay": round(info.task_delay),
        "label": info.label,
        "cluster": info.cluster,
        "max_concurrency": info.max_concurrency,
    }
    return {k: v for k, v in data.items() if v is not None}


def _not_found(ctx: Ctx) -> ApiError:
    return ApiError(404, "Schedule not found")


async def create(ctx: Ctx) -> Response:
    """POST /schedules `{"schedules": [...]}` -> `{"msg": "Scheduled", "schedules"}`.

    Every item is checked before any is stored; each is then stored on its own.
    """
    items = task_items(ctx, await ctx.json_object(), key="schedules")
    parsed = [
        (
            required_str(i, "code_name"),
            payload_text(i.get("payload")),
            schedule_fields(i),
        )
        for i in items
    ]
    client = schedules_of(ctx)

    def work() -> list[str]:
        return [
            client.create(code, payload, **fields).id
            for code, payload, fields in parsed
        ]

    ids = await ctx.run(work)
    return json_response({"msg": "Scheduled", "schedules": [{"id": i} for i in ids]})


async def list_schedules(ctx: Ctx) -> Response:
    """GET /schedules?page&per_page: newest first."""
    per_page = ctx.query_int("per_page", 30, 1, 100)
    offset = ctx.query_int("page", 0, 0, 100) * per_page
    client = schedules_of(ctx)
    found = await ctx.run(client.list, limit=per_page, offset=offset)
    return json_response({"schedules": [schedule_json(s) for s in found]})


async def get_schedule(ctx: Ctx) -> Response:
    """GET /schedules/{schedule_id}: the bare schedule object."""
    client = schedules_of(ctx)
    try:
        info = await ctx.run(client.get, ctx.path("schedule_id"))
    except NotFound:
        raise _not_found(ctx) from None
    return json_response(schedule_json(info))


async def cancel(ctx: Ctx) -> Response:
    """POST /schedules/{schedule_id}/cancel: idempotent."""
    client = schedules_of(ctx)
    try:
        await ctx.run(client.cancel, ctx.path("schedule_id"))
    except NotFound:
        raise _not_found(ctx) from None
    return msg("Cancelled")


async def update(ctx: Ctx) -> Response:
    """PUT /schedules/{schedule_id}: change the given fields (iron_worker_ng)."""
    data = await ctx.json_object()
    inner = data.get("schedule")
    body: dict[str, Any] = inner if isinstance(inner, dict) else data
    changes = schedule_fields({k: v for k, v in body.items() if k in UPDATABLE})
    if "payload" in body:
        changes["payload"] = payload_text(body["payload"])
    client = schedules_of(ctx)
    try:
        info = await ctx.run(client.update, ctx.path("schedule_id"), **changes)
    except NotFound:
        raise _not_found(ctx) from None
    return json_response({**schedule_json(info), "msg": "Updated"})
