"""IronWorker v2 tasks: queue, list, get, log, cancel, progress, retry, webhook."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from starlette.responses import PlainTextResponse, Response

from workhorse.api.endpoint import Ctx, json_response, msg
from workhorse.api.errors import ApiError
from workhorse.api.wire import (
    IRON_STATUSES,
    as_int,
    as_number,
    as_str,
    payload_text,
    required_str,
    task_json,
)
from workhorse.client import Client
from workhorse.domain.task import Task, TaskOptions
from workhorse.errors import NotFound
from workhorse.storage.stores import Transaction

SCAN_BATCH = 200
# Listing with filters the database cannot apply (several statuses, label,
# cluster) examines at most this many tasks, newest first.
MAX_SCANNED = 10_000


def task_options(item: dict[str, Any]) -> TaskOptions:
    """TaskOptions from an Iron task; unset sentinels mean "the code's default"."""
    priority = as_int(item.get("priority"), "priority")
    timeout = as_number(item.get("timeout"), "timeout")
    delay = as_number(item.get("delay"), "delay")
    cluster = as_str(item.get("cluster"), "cluster")
    return TaskOptions(
        priority=None if priority is None or priority < 0 else priority,
        timeout=None if not timeout or timeout <= 0 else math.ceil(timeout),
        delay=max(delay or 0.0, 0.0),
        label=as_str(item.get("label"), "label"),
        cluster=cluster or "default",
        retries=as_int(item.get("retries"), "retries"),
        retries_delay=as_int(item.get("retries_delay"), "retries_delay"),
        parent_id=as_str(item.get("parent_id"), "parent_id"),
        unique_key=as_str(item.get("unique_key"), "unique_key"),
    )


def task_items(
    ctx: Ctx, data: dict[str, Any], key: str = "tasks"
) -> list[dict[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise ApiError(400, f"'{key}' must be a non-empty list")
    if len(items) > ctx.config.max_tasks_per_request:
        raise ApiError(
            400, f"at most {ctx.config.max_tasks_per_request} {key} per request"
        )
    if not all(isinstance(i, dict) for i in items):
        raise ApiError(400, f"every item of '{key}' must be an object")
    return items


def queue_unit(
    client: Client, parsed: list[tuple[str, str, TaskOptions]]
) -> Callable[[Transaction], list[tuple[str, bool]]]:
    """Work that validates tasks of any codes, then inserts them (all or none); it
    gives each task's id and whether it was a duplicate (a unique task whose key a
    queued or running task holds: the id is that task's).

    Validation (code lookups included) raises before anything is written, so the
    unit can share a group commit.
    """

    def work(tx: Transaction) -> list[tuple[str, bool]]:
        for parent in {o.parent_id for _, _, o in parsed if o.parent_id}:
            if tx.tasks.get(client.project_id, parent) is None:
                raise NotFound(f"parent task {parent} not found")
        built = [
            client.build(tx, code, payload, options)
            for code, payload, options in parsed
        ]
        ids = client.queue_tasks(tx, built)
        return [(i, i != t.id) for i, t in zip(ids, built, strict=True)]

    return work


async def queue(ctx: Ctx) -> Response:
    """POST /tasks: `{"tasks": [...]}` -> `{"msg": "Queued up", "tasks": [{"id"}]}`."""
    items = task_items(ctx, await ctx.json_object())
    parsed = [
        (required_str(i, "code_name"), payload_text(i.get("payload")), task_options(i))
        for i in items
    ]
    ids = await ctx.write(queue_unit(ctx.client, parsed))
    return json_response({"msg": "Queued up", "tasks": [{"id": i} for i, _ in ids]})


def code_ids(ctx: Ctx, names: set[str]) -> dict[str, str]:
    """Code ids by name for the given code names of the project."""

    def read(tx: Transaction) -> dict[str, str]:
        found = {}
        for name in names:
            row = tx.codes.get(ctx.project_id, name)
            if row is not None:
                found[name] = row["id"]
        return found

    return ctx.storage.run(read, write=False) if names else {}


def _scan(
    ctx: Ctx, filters: dict[str, Any], statuses: set[str], skip: int, take: int
) -> list[Task]:
    label, cluster = filters.pop("label"), filters.pop("cluster")
    status = next(iter(statuses)) if len(statuses) == 1 else None
    found: list[Task] = []
    before: int | None = None
    scanned = 0
    while len(found) < skip + take and scanned < MAX_SCANNED:
        rows = ctx.client.list(
            **filters, status=status, before_seq=before, limit=SCAN_BATCH
        )
        for _, task in rows:
            if (
                (not statuses or task.status.value in statuses)
                and (label is None or task.label == label)
                and (cluster is None or task.cluster == cluster)
            ):
                found.append(task)
        scanned += len(rows)
        if len(rows) < SCAN_BATCH:
            break
        before = rows[-1][0]
    return found[skip : skip + take]


async def list_tasks(ctx: Ctx) -> Response:
    """GET /tasks: newest first; status flags are ORed, only their presence counts."""
    per_page = ctx.query_int("per_page", 30, 1, 100)
    page = ctx.query_int("page", 0, 0, 100)
    statuses = {s for s in IRON_STATUSES if s in ctx.request.query_params}
    filters = {
        "code_name": ctx.query("code_name") or None,
        "from_time": ctx.query_int("from_time", -1, -1, 2**40)
        if ctx.query("from_time")
        else None,
        "to_time": ctx.query_int("to_time", -1, -1, 2**40)
        if ctx.query("to_time")
        else None,
        "label": ctx.query("label") or None,
        "cluster": ctx.query("cluster") or None,
    }

    def read() -> list[dict[str, Any]]:
        tasks = _scan(ctx, dict(filters), statuses, page * per_page, per_page)
        ids = code_ids(ctx, {t.code_name for t in tasks})
        return [task_json(t, ids.get(t.code_name)) for t in tasks]

    return json_response({"tasks": await ctx.run(read)})


def get_task_or_404(ctx: Ctx, task_id: str) -> Task:
    """A task of the project, or 404 `Task not found`."""
    try:
        return ctx.client.get(task_id)
    except NotFound:
        raise ApiError(404, "Task not found") from None


async def get_task(ctx: Ctx) -> Response:
    """GET /tasks/{task_id}: the bare task object."""

    def read() -> dict[str, Any]:
        task = get_task_or_404(ctx, ctx.path("task_id"))
        return task_json(task, code_ids(ctx, {task.code_name}).get(task.code_name))

    return json_response(await ctx.run(read))


async def log(ctx: Ctx) -> Response:
    """GET /tasks/{task_id}/log and /outlog: text/plain; 404 until there is output."""

    def read() -> str | None:
        task = get_task_or_404(ctx, ctx.path("task_id"))
        text = ctx.client.log(task.id)
        return text if text or task.status.is_final else None

    text = await ctx.run(read)
    if text is None:
        raise ApiError(404, "Log not available yet")
    return PlainTextResponse(text)


async def cancel(ctx: Ctx) -> Response:
    """POST /tasks/{task_id}/cancel: idempotent."""

    def work() -> None:
        get_task_or_404(ctx, ctx.path("task_id"))
        ctx.client.cancel(ctx.path("task_id"))

    await ctx.run(work)
    return msg("Cancelled")


async def progress(ctx: Ctx) -> Response:
    """POST /tasks/{task_id}/progress `{"percent", "msg"}` (applies while running)."""
    data = await ctx.json_object()
    percent = as_number(data.get("percent"), "percent")
    if percent is None:
        raise ApiError(400, "percent is required")
    text = as_str(data.get("msg"), "msg")

    def work() -> None:
        get_task_or_404(ctx, ctx.path("task_id"))
        ctx.client.set_progress(ctx.path("task_id"), round(percent), text)

    await ctx.run(work)
    return msg("Progress set")


def retry_task(client: Client, task_id: str, delay: float) -> str:
    """Queue a copy of a task, finished or not: IronWorker allows retrying any task
    (its test suite retries a queued one)."""
    return client.retry(task_id, delay=delay, unfinished_too=True)


async def retry(ctx: Ctx) -> Response:
    """POST /tasks/{task_id}/retry `{"delay"}`: a new task, same code and payload."""
    data = await ctx.json_object()
    delay = max(as_number(data.get("delay"), "delay") or 0.0, 0.0)

    def work() -> str:
        get_task_or_404(ctx, ctx.path("task_id"))
        return retry_task(ctx.client, ctx.path("task_id"), delay)

    new = await ctx.run(work)
    return json_response({"msg": "Queued up", "tasks": [{"id": new}]})


async def webhook(ctx: Ctx) -> Response:
    """POST /tasks/webhook?code_name=X: the raw body becomes the payload."""
    code_name = ctx.query("code_name")
    if not code_name:
        raise ApiError(400, "code_name is required in the query string")
    query = dict(ctx.request.query_params)
    options = task_options(
        {
            "priority": query.get("priority"),
            "timeout": _query_number(query.get("timeout"), "timeout"),
            "delay": _query_number(query.get("delay"), "delay"),
            "cluster": query.get("cluster"),
            "label": query.get("label"),
            "unique_key": query.get("unique_key"),
        }
    )
    raw = await ctx.body()
    try:
        payload = raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "the webhook body must be UTF-8 text") from None
    ((task_id, _),) = await ctx.write(
        queue_unit(ctx.client, [(code_name, payload, options)])
    )
    return json_response({"id": task_id, "msg": "Queued up."})


def _query_number(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a number") from None
    if not math.isfinite(value):
        raise ApiError(400, f"{name} must be a number")
    return value
