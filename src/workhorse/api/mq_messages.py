"""IronMQ v3 messages: post, reserve (long poll), peek, get, delete, touch, release.

A long-polling reserve holds no pool thread while it waits: it subscribes to the
queue's notification key first, tries once, then sleeps on an asyncio event
(see `waiter`). When woken, or once a second, it peeks (a read) and reserves (a
write) only when a message is ready.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from starlette.responses import Response

from workhorse.api.endpoint import Ctx, json_response, msg
from workhorse.api.errors import ApiError
from workhorse.api.mq_queues import POSTED, post_unit, queue_name, queues_of
from workhorse.api.wire import rfc3339
from workhorse.domain.message import Message, NewMessage, validate_reserve
from workhorse.storage.messages import queue_key

# A long poll re-checks its queue at most this often, however often it is woken.
MIN_CHECK_SECONDS = 0.05


def _plain(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "body": message.body,
        "reserved_count": message.reserved_count,
    }


def _new_message(item: Any) -> NewMessage:
    if not isinstance(item, dict):
        raise ApiError(400, "each message must be an object with a 'body' string")
    body = item.get("body")
    if not isinstance(body, str):
        raise ApiError(400, "each message needs a 'body' string")
    return NewMessage(
        body=body, delay=item.get("delay") or 0, push_headers=item.get("push_headers")
    )


async def post(ctx: Ctx) -> Response:
    """POST /queues/{q}/messages: 201, ids in request order (creates the queue)."""
    data = await ctx.json_object()
    items = data.get("messages")
    if not isinstance(items, list) or not items:
        raise ApiError(400, "'messages' must be a non-empty list")
    messages = [_new_message(i) for i in items]
    ids = await ctx.write(post_unit(ctx, messages))
    return json_response({"ids": ids, "msg": POSTED}, 201)


async def reserve(ctx: Ctx) -> Response:
    """POST /queues/{q}/reservations `{n, timeout, wait, delete}`."""
    data = await ctx.json_object()
    n = data.get("n")
    request = validate_reserve(
        1 if n is None else n, data.get("timeout"), data.get("wait")
    )
    delete = data.get("delete", False)
    if not isinstance(delete, bool) and delete is not None:
        raise ApiError(400, "delete must be true or false")
    name = queue_name(ctx)
    attempt = functools.partial(
        queues_of(ctx).reserve,
        name,
        request.n,
        timeout=request.timeout,
        delete=bool(delete),
    )
    if request.wait <= 0:
        got = await ctx.run(attempt)
    else:
        got = await _long_poll(ctx, name, attempt, request.wait)
    return json_response({"messages": [m.to_dict() for m in got]})


async def _long_poll(ctx: Ctx, name: str, attempt: Any, wait: float) -> list[Message]:
    deadline = time.monotonic() + wait
    queues = queues_of(ctx)
    with ctx.services.notifier.subscribe(queue_key(ctx.project_id, name)) as sub:
        checked = time.monotonic()
        got: list[Message] = await ctx.run(attempt)
        while not got:
            if deadline <= time.monotonic() or await ctx.request.is_disconnected():
                break
            await sub.wait(deadline - time.monotonic())
            # Wake-ups can be broad (SQLite announces every commit to everyone), so
            # a waiter checks at most every MIN_CHECK_SECONDS, and with a read first.
            pause = checked + MIN_CHECK_SECONDS - time.monotonic()
            if pause > 0:
                await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            checked = time.monotonic()
            if await ctx.run(queues.peek, name, 1):
                got = await ctx.run(attempt)
        return got


async def peek(ctx: Ctx) -> Response:
    """GET /queues/{q}/messages?n=: the next messages, nothing reserved."""
    n = ctx.query_int("n", 1, 1, 100)
    found = await ctx.run(queues_of(ctx).peek, queue_name(ctx), n)
    return json_response({"messages": [_plain(m) for m in found]})


async def get_message(ctx: Ctx) -> Response:
    """GET /queues/{q}/messages/{id}: no reservation id in the answer."""
    found = await ctx.run(
        queues_of(ctx).get_message, queue_name(ctx), ctx.path("message_id")
    )
    return json_response({"message": _plain(found)})


def _optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    return value


async def delete_message(ctx: Ctx) -> Response:
    """DELETE /queues/{q}/messages/{id} `{reservation_id?, subscriber_name?}`.

    403 when the reservation is stale.
    """
    data = await ctx.json_object()
    await ctx.run(
        functools.partial(
            queues_of(ctx).delete,
            queue_name(ctx),
            ctx.path("message_id"),
            _optional_str(data, "reservation_id"),
            subscriber_name=_optional_str(data, "subscriber_name"),
        )
    )
    return msg("Deleted")


def _batch(ids: Any) -> list[tuple[str, str | None]]:
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "'ids' must be a non-empty list")
    items: list[tuple[str, str | None]] = []
    for item in ids:
        if isinstance(item, str):
            items.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("id"), str):
            items.append((item["id"], _optional_str(item, "reservation_id")))
        else:
            raise ApiError(400, "each item of 'ids' needs an 'id' string")
    return items


async def delete_or_clear(ctx: Ctx) -> Response:
    """DELETE /queues/{q}/messages: `{"ids": [...]}` deletes those, `{}` clears."""
    data = await ctx.json_object()
    if "ids" in data:
        await ctx.run(queues_of(ctx).delete_many, queue_name(ctx), _batch(data["ids"]))
        return msg("Deleted")
    await ctx.run(queues_of(ctx).clear, queue_name(ctx))
    return msg("Cleared")


def _reservation_id(data: dict[str, Any]) -> str:
    rid = _optional_str(data, "reservation_id")
    if rid is None:
        raise ApiError(400, "reservation_id is required")
    return rid


async def touch(ctx: Ctx) -> Response:
    """POST /queues/{q}/messages/{id}/touch: a new reservation id."""
    data = await ctx.json_object()
    new = await ctx.run(
        functools.partial(
            queues_of(ctx).touch,
            queue_name(ctx),
            ctx.path("message_id"),
            _reservation_id(data),
            timeout=data.get("timeout"),
        )
    )
    return json_response({"reservation_id": new, "msg": "Touched"})


async def release(ctx: Ctx) -> Response:
    """POST /queues/{q}/messages/{id}/release `{reservation_id, delay?}`."""
    data = await ctx.json_object()
    await ctx.run(
        functools.partial(
            queues_of(ctx).release,
            queue_name(ctx),
            ctx.path("message_id"),
            _reservation_id(data),
            delay=data.get("delay") or 0,
        )
    )
    return msg("Released")


async def push_statuses(ctx: Ctx) -> Response:
    """GET /queues/{q}/messages/{id}/subscribers: per-subscriber delivery status."""
    found = await ctx.run(
        queues_of(ctx).push_statuses, queue_name(ctx), ctx.path("message_id")
    )
    subscribers = []
    for status in found:
        item = status.to_dict()
        item["last_try_at"] = rfc3339(status.last_try_at)
        subscribers.append({k: v for k, v in item.items() if v is not None})
    return json_response({"subscribers": subscribers})
