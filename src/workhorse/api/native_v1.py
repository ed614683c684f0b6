"""Native JSON API under /v1 for what Iron lacks: results, attempts, children, runners.

Times are RFC 3339 in UTC, like the Iron APIs; field names follow the Python SDK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from workhorse.api.endpoint import Auth, Ctx, Handler, json_response
from workhorse.api.wire import payload_text, required_str, rfc3339
from workhorse.api.worker_tasks import (
    get_task_or_404,
    queue_unit,
    task_items,
    task_options,
)
from workhorse.domain.task import Attempt, Task

P = "/v1/projects/{project_id}"


def _result(task: Task) -> Any:
    if task.result is None:
        return None
    try:
        return json.loads(task.result)
    except ValueError:
        return task.result


def task_native(task: Task) -> dict[str, Any]:
    """Every field of a task, times as RFC 3339, the result decoded."""
    return {
        "id": task.id,
        "project_id": task.project_id,
        "code_name": task.code_name,
        "kind": task.kind,
        "code_revision": task.code_revision,
        "status": task.status.value,
        "payload": task.payload,
        "priority": task.priority,
        "timeout": task.timeout,
        "label": task.label,
        "cluster": task.cluster,
        "retries": task.retries,
        "retries_delay": task.retries_delay,
        "backoff": task.backoff,
        "attempt": task.attempt,
        "run_at": rfc3339(task.run_at),
        "created_at": rfc3339(task.created_at),
        "start_time": rfc3339(task.start_time),
        "end_time": rfc3339(task.end_time),
        "duration": task.duration,
        "result": _result(task),
        "error": task.error,
        "progress": task.progress,
        "progress_message": task.progress_message,
        "cancel_requested": task.cancel_requested,
        "schedule_id": task.schedule_id,
        "parent_id": task.parent_id,
        "unique_key": task.unique_key,
    }


def attempt_native(attempt: Attempt) -> dict[str, Any]:
    """One recorded attempt."""
    return {
        "attempt": attempt.attempt,
        "runner_id": attempt.runner_id,
        "start_time": rfc3339(attempt.start_time),
        "end_time": rfc3339(attempt.end_time),
        "status": attempt.status,
        "error": attempt.error,
    }


async def queue(ctx: Ctx) -> Response:
    """POST /v1/projects/{p}/tasks `{"tasks": [...]}` (with `retries`, `parent_id`,
    `unique_key`); each task's id, and whether it was a duplicate of a task holding
    its unique key (whose id it then is)."""
    items = task_items(ctx, await ctx.json_object())
    parsed = [
        (required_str(i, "code_name"), payload_text(i.get("payload")), task_options(i))
        for i in items
    ]
    ids = await ctx.write(queue_unit(ctx.client, parsed))
    return json_response(
        {"tasks": [{"id": i, "duplicate": dup} for i, dup in ids]}, 201
    )


async def get_task(ctx: Ctx) -> Response:
    """GET /v1/projects/{p}/tasks/{id}: the full task, with its result."""
    task = await ctx.run(get_task_or_404, ctx, ctx.path("task_id"))
    return json_response(task_native(task))


async def attempts(ctx: Ctx) -> Response:
    """GET /v1/projects/{p}/tasks/{id}/attempts, oldest first."""

    def read() -> list[Attempt]:
        get_task_or_404(ctx, ctx.path("task_id"))
        return ctx.client.attempts(ctx.path("task_id"))

    return json_response({"attempts": [attempt_native(a) for a in await ctx.run(read)]})


async def children(ctx: Ctx) -> Response:
    """GET /v1/projects/{p}/tasks/{id}/children: status counts, newest children."""
    limit = ctx.query_int("per_page", 100, 1, 1000)

    def read() -> tuple[dict[str, int], list[Task]]:
        parent = get_task_or_404(ctx, ctx.path("task_id"))
        summary = ctx.storage.run(
            lambda tx: tx.tasks.children_summary(parent.id), write=False
        )
        rows = ctx.client.list(parent_id=parent.id, limit=limit)
        return summary, [t for _, t in rows]

    summary, tasks = await ctx.run(read)
    return json_response(
        {
            "summary": summary,
            "total": sum(summary.values()),
            "tasks": [task_native(t) for t in tasks],
        }
    )


async def stats(ctx: Ctx) -> Response:
    """GET /v1/projects/{p}/stats: task counts per code and status."""
    counts = await ctx.run(ctx.client.counts)
    per_code: dict[str, dict[str, int]] = {}
    for code, status, n in counts:
        per_code.setdefault(code, {})[status] = n
    return json_response({"codes": per_code})


async def runners(ctx: Ctx) -> Response:
    """GET /v1/projects/{p}/runners: live runners (no per-project details)."""
    rows = await ctx.run(ctx.client.runners)
    keep = ("id", "host", "cluster", "concurrency", "running", "sandbox", "status")
    out = [
        {
            **{k: r.get(k) for k in keep},
            "heartbeat_age": round(float(r.get("age") or 0), 3),
        }
        for r in rows
    ]
    return json_response({"runners": out})


def routes() -> Sequence[tuple[str, Sequence[str], Handler, Auth]]:
    """(path, methods, handler, auth) of the native API."""
    return [
        (f"{P}/tasks", ["POST"], queue, "project"),
        (f"{P}/tasks/{{task_id}}", ["GET"], get_task, "project"),
        (f"{P}/tasks/{{task_id}}/attempts", ["GET"], attempts, "project"),
        (f"{P}/tasks/{{task_id}}/children", ["GET"], children, "project"),
        (f"{P}/stats", ["GET"], stats, "project"),
        (f"{P}/runners", ["GET"], runners, "project"),
    ]
