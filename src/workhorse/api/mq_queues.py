"""IronMQ v3 queues: create/update/get/list/delete, subscribers, alerts, webhook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from workhorse.api.endpoint import Ctx, json_response, msg
from workhorse.api.errors import ApiError
from workhorse.domain.ids import new_id
from workhorse.domain.message import (
    MAX_PUSH_HEADERS,
    NewMessage,
    validate_new_messages,
    validate_push_headers,
    validate_queue_name,
)
from workhorse.domain.queue import QueueInfo
from workhorse.errors import InvalidInput
from workhorse.queues import MessageQueues
from workhorse.storage.stores import Transaction

POSTED = "Messages put on queue."
SUBSCRIBER_HEADER = "x-subscribers-"


def queues_of(ctx: Ctx) -> MessageQueues:
    """The queue operations of the request's project."""
    return MessageQueues(
        ctx.storage, project_id=ctx.project_id, settings=ctx.services.settings
    )


def queue_name(ctx: Ctx) -> str:
    """The queue named in the path."""
    return ctx.path("queue_name")


def post_unit(
    ctx: Ctx, messages: list[NewMessage]
) -> Callable[[Transaction], list[str]]:
    """Work that posts validated messages to the path's queue (for a group commit).

    Everything that can refuse the post is checked here, before any write.
    """
    name = validate_queue_name(queue_name(ctx))
    items = validate_new_messages(messages, ctx.services.settings.max_message_bytes)
    ids = [new_id() for _ in items]
    pairs = list(zip(ids, items, strict=True))
    queue_id = new_id()
    project_id = ctx.project_id

    def work(tx: Transaction) -> list[str]:
        tx.messages.post(project_id, name, pairs, queue_id=queue_id)
        return ids

    return work


def queue_body(info: QueueInfo) -> Response:
    """`{"queue": {...}}`."""
    return json_response({"queue": info.to_dict()})


def _queue_settings(data: dict[str, Any]) -> dict[str, Any] | None:
    settings = data.get("queue")
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise ApiError(400, "'queue' must be an object")
    return settings


async def list_queues(ctx: Ctx) -> Response:
    """GET /queues?per_page&previous&prefix: alphabetical, after `previous`."""
    per_page = ctx.query_int("per_page", 30, 1, 100)
    found = await ctx.run(
        queues_of(ctx).list_queues,
        prefix=ctx.query("prefix") or None,
        previous=ctx.query("previous") or None,
        per_page=per_page,
    )
    return json_response({"queues": [{"name": q.name} for q in found]})


async def create_queue(ctx: Ctx) -> Response:
    """PUT /queues/{q}: create, or update (alerts given replace the current ones)."""
    settings = _queue_settings(await ctx.json_object())
    info = await ctx.run(queues_of(ctx).create_queue, queue_name(ctx), settings)
    return queue_body(info)


async def update_queue(ctx: Ctx) -> Response:
    """PATCH /queues/{q}: change some settings (alerts given are added)."""
    settings = _queue_settings(await ctx.json_object())
    info = await ctx.run(queues_of(ctx).update_queue, queue_name(ctx), settings)
    return queue_body(info)


async def get_queue(ctx: Ctx) -> Response:
    """GET /queues/{q}: settings plus `size` and `total_messages`."""
    return queue_body(await ctx.run(queues_of(ctx).get_queue, queue_name(ctx)))


async def delete_queue(ctx: Ctx) -> Response:
    """DELETE /queues/{q}."""
    await ctx.run(queues_of(ctx).delete_queue, queue_name(ctx))
    return msg("Deleted")


def _subscribers(data: dict[str, Any]) -> list[dict[str, Any]]:
    subs = data.get("subscribers")
    if (
        not isinstance(subs, list)
        or not subs
        or not all(isinstance(s, dict) for s in subs)
    ):
        raise ApiError(400, "'subscribers' must be a non-empty list of objects")
    return subs


async def add_subscribers(ctx: Ctx) -> Response:
    """POST /queues/{q}/subscribers: add (same name: update)."""
    subs = _subscribers(await ctx.json_object())
    await ctx.run(queues_of(ctx).add_subscribers, queue_name(ctx), subs)
    return msg("Updated")


async def replace_subscribers(ctx: Ctx) -> Response:
    """PUT /queues/{q}/subscribers: replace the whole list."""
    subs = _subscribers(await ctx.json_object())
    await ctx.run(queues_of(ctx).replace_subscribers, queue_name(ctx), subs)
    return msg("Updated")


async def remove_subscribers(ctx: Ctx) -> Response:
    """DELETE /queues/{q}/subscribers `{"subscribers": [{"name"}]}`."""
    subs = _subscribers(await ctx.json_object())
    names = [s.get("name") for s in subs]
    if not all(isinstance(n, str) and n for n in names):
        raise ApiError(400, "each subscriber to remove needs a name")
    await ctx.run(queues_of(ctx).remove_subscribers, queue_name(ctx), names)
    return msg("Updated")


def _alerts(data: dict[str, Any]) -> list[Any]:
    alerts = data.get("alerts")
    if alerts is None and isinstance(data.get("queue"), dict):
        alerts = data["queue"].get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise ApiError(400, "'alerts' must be a non-empty list")
    return alerts


async def add_alerts(ctx: Ctx) -> Response:
    """POST /queues/{q}/alerts: add alerts."""
    alerts = _alerts(await ctx.json_object())
    if not all(isinstance(a, dict) for a in alerts):
        raise ApiError(400, "each alert must be an object")
    return queue_body(await ctx.run(queues_of(ctx).add_alerts, queue_name(ctx), alerts))


async def replace_alerts(ctx: Ctx) -> Response:
    """PUT /queues/{q}/alerts: replace every alert."""
    alerts = _alerts(await ctx.json_object())
    if not all(isinstance(a, dict) for a in alerts):
        raise ApiError(400, "each alert must be an object")
    return queue_body(
        await ctx.run(queues_of(ctx).replace_alerts, queue_name(ctx), alerts)
    )


async def remove_alerts(ctx: Ctx) -> Response:
    """DELETE /queues/{q}/alerts.

    Accepts `{"queue":{"alerts":["id"]}}` (Python) and `{"alerts":[{"id"}]}` (Ruby).
    """
    ids: list[str] = []
    for item in _alerts(await ctx.json_object()):
        alert_id = item.get("id") if isinstance(item, dict) else item
        if not isinstance(alert_id, str) or not alert_id:
            raise ApiError(400, "each alert to remove needs an id")
        ids.append(alert_id)
    await ctx.run(queues_of(ctx).remove_alerts, queue_name(ctx), ids)
    return msg("Alerts were deleted.")


async def remove_alert(ctx: Ctx) -> Response:
    """DELETE /queues/{q}/alerts/{alert_id}."""
    await ctx.run(queues_of(ctx).remove_alerts, queue_name(ctx), [ctx.path("alert_id")])
    return msg("Alerts were deleted.")


def webhook_headers(ctx: Ctx) -> dict[str, str] | None:
    """`X-Subscribers-<Name>` request headers as push headers; bad ones are dropped."""
    found: dict[str, str] = {}
    for key, value in ctx.request.headers.items():
        if (
            not key.lower().startswith(SUBSCRIBER_HEADER)
            or len(found) >= MAX_PUSH_HEADERS
        ):
            continue
        name = key[len(SUBSCRIBER_HEADER) :]
        try:
            if validate_push_headers({name: value}):
                found[name] = value
        except InvalidInput:
            continue
    return found or None


async def webhook(ctx: Ctx) -> Response:
    """POST /queues/{q}/webhook: the raw body is posted as one message."""
    raw = await ctx.body()
    try:
        body = raw.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "the webhook body must be UTF-8 text") from None
    message = NewMessage(body=body, push_headers=webhook_headers(ctx))
    ids = await ctx.write(post_unit(ctx, [message]))
    return json_response({"ids": ids, "msg": POSTED}, 201)
