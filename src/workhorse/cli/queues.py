"""`workhorse queue list|info|create|post|reserve|peek|delete|clear`."""

from __future__ import annotations

import sys
from typing import Any

import click

from workhorse.cli.common import (
    Context,
    console,
    emit_json,
    fmt_time,
    handle_errors,
    pass_ctx,
    table,
)
from workhorse.domain.message import Message, NewMessage
from workhorse.queues import MessageQueues


def _ops(ctx: Context) -> MessageQueues:
    return MessageQueues(ctx.storage, project_id=ctx.project_id, settings=ctx.settings)


def _show_messages(messages: list[Message], as_json: bool) -> None:
    if as_json:
        emit_json([m.to_dict() for m in messages])
        return
    if not messages:
        console.print("no messages available")
        return
    table(
        None,
        ["id", "reserved", "reservation_id", "body"],
        [[m.id, m.reserved_count, m.reservation_id, m.body[:120]] for m in messages],
    )


@click.group()
def queue() -> None:
    """Post, reserve and inspect message queues (IronMQ semantics)."""


@queue.command("list")
@click.option("--prefix", default=None, help="only names starting with this")
@click.option("--previous", default=None, help="start after this name (paging)")
@click.option("--per-page", default=30, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def list_cmd(
    ctx: Context, prefix: str | None, previous: str | None, per_page: int, as_json: bool
) -> None:
    """Queues in name order, with their sizes."""
    ops = _ops(ctx)
    infos = [
        ops.get_queue(q.name)
        for q in ops.list_queues(prefix=prefix, previous=previous, per_page=per_page)
    ]
    if as_json:
        emit_json([q.to_dict() for q in infos])
        return
    table(
        None,
        ["name", "type", "size", "total", "timeout", "created"],
        [
            [
                q.name,
                q.settings.type,
                q.size,
                q.total_messages,
                f"{q.settings.message_timeout}s",
                fmt_time(q.created_at),
            ]
            for q in infos
        ],
    )


@queue.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def info_cmd(ctx: Context, name: str, as_json: bool) -> None:
    """A queue's settings and counts (size includes reserved and delayed messages)."""
    info = _ops(ctx).get_queue(name)
    if as_json:
        emit_json(info.to_dict())
        return
    data = info.to_dict()
    for key in (
        "name",
        "id",
        "type",
        "size",
        "total_messages",
        "message_timeout",
        "message_expiration",
    ):
        console.print(f"[bold]{key:>18}[/bold]  {data[key]}")
    for key in ("push", "dead_letter", "alerts"):
        if key in data:
            console.print(f"[bold]{key:>18}[/bold]  {data[key]}")


@queue.command("create")
@click.argument("name")
@click.option(
    "--timeout",
    "message_timeout",
    type=int,
    default=None,
    help="reservation timeout, seconds",
)
@click.option(
    "--expiration",
    "message_expiration",
    type=int,
    default=None,
    help="message lifetime, seconds",
)
@click.option("--dead-letter", default=None, help="dead-letter queue name")
@click.option(
    "--max-reservations",
    type=int,
    default=None,
    help="reservations before dead-lettering",
)
@click.option(
    "--type", "kind", type=click.Choice(["pull", "multicast", "unicast"]), default=None
)
@click.option(
    "--subscriber",
    "subscribers",
    multiple=True,
    help="push subscriber URL (repeatable)",
)
@click.option("--retries", type=int, default=None, help="push retries")
@click.option(
    "--retries-delay", type=int, default=None, help="seconds between push retries"
)
@click.option(
    "--error-queue",
    default=None,
    help="queue that receives undeliverable push messages",
)
@pass_ctx
@handle_errors
def create_cmd(
    ctx: Context,
    *,
    name: str,
    message_timeout: int | None,
    message_expiration: int | None,
    dead_letter: str | None,
    max_reservations: int | None,
    kind: str | None,
    subscribers: tuple[str, ...],
    retries: int | None,
    retries_delay: int | None,
    error_queue: str | None,
) -> None:
    """Create a queue (or change an existing one's settings)."""
    body: dict[str, Any] = {}
    if message_timeout is not None:
        body["message_timeout"] = message_timeout
    if message_expiration is not None:
        body["message_expiration"] = message_expiration
    if kind:
        body["type"] = kind
    if dead_letter is not None:
        body["dead_letter"] = {
            "queue_name": dead_letter,
            "max_reservations": max_reservations,
        }
    if subscribers:
        body["push"] = {
            "subscribers": [{"url": url} for url in subscribers],
            "retries": retries,
            "retries_delay": retries_delay,
            "error_queue": error_queue,
        }
    info = _ops(ctx).create_queue(name, body)
    console.print(f"queue [bold]{info.name}[/bold] ({info.settings.type})")


@queue.command("post")
@click.argument("name")
@click.argument("bodies", nargs=-1)
@click.option(
    "--stdin", "from_stdin", is_flag=True, help="post each line of standard input"
)
@click.option(
    "--delay", type=float, default=0, help="seconds before the messages may be reserved"
)
@pass_ctx
@handle_errors
def post_cmd(
    ctx: Context, name: str, bodies: tuple[str, ...], from_stdin: bool, delay: float
) -> None:
    """Post messages (one per BODY argument); prints their ids."""
    items = list(bodies)
    if from_stdin:
        items.extend(line.rstrip("\n") for line in sys.stdin if line.strip())
    if not items:
        raise click.UsageError("give message bodies as arguments or --stdin")
    ops = _ops(ctx)
    for start in range(0, len(items), 100):
        for message_id in ops.post(
            name, [NewMessage(b, delay) for b in items[start : start + 100]]
        ):
            click.echo(message_id)


@queue.command("reserve")
@click.argument("name")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--timeout",
    type=int,
    default=None,
    help="reservation timeout (default: the queue's)",
)
@click.option(
    "--wait",
    type=click.FloatRange(0, 30),
    default=0,
    help="long-poll up to this many seconds",
)
@click.option(
    "--delete", is_flag=True, help="pop: delete the messages as they are reserved"
)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def reserve_cmd(
    ctx: Context,
    *,
    name: str,
    count: int,
    timeout: int | None,
    wait: float,
    delete: bool,
    as_json: bool,
) -> None:
    """Reserve messages (then `queue delete NAME ID --reservation-id R` each)."""
    _show_messages(
        _ops(ctx).reserve(name, count, timeout=timeout, wait=wait, delete=delete),
        as_json,
    )


@queue.command("peek")
@click.argument("name")
@click.option("-n", "count", default=1, show_default=True, type=click.IntRange(1, 100))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@handle_errors
def peek_cmd(ctx: Context, name: str, count: int, as_json: bool) -> None:
    """The next messages, without reserving them."""
    _show_messages(_ops(ctx).peek(name, count), as_json)


@queue.command("delete")
@click.argument("name")
@click.argument("message_ids", nargs=-1)
@click.option(
    "--reservation-id", default=None, help="the reservation of a reserved message"
)
@click.option(
    "--yes", is_flag=True, help="with no message ids: delete the queue without asking"
)
@pass_ctx
@handle_errors
def delete_cmd(
    ctx: Context,
    name: str,
    message_ids: tuple[str, ...],
    reservation_id: str | None,
    yes: bool,
) -> None:
    """Delete messages by id; with no ids, delete the whole queue."""
    ops = _ops(ctx)
    if not message_ids:
        if not yes:
            click.confirm(f"delete queue {name!r} and every message in it?", abort=True)
        ops.delete_queue(name)
        click.echo(f"deleted queue {name}")
        return
    if len(message_ids) == 1:
        ops.delete(name, message_ids[0], reservation_id)
        click.echo(f"deleted {message_ids[0]}")
        return
    deleted = set(ops.delete_many(name, [(m, reservation_id) for m in message_ids]))
    for message_id in message_ids:
        click.echo(
            (
                "deleted "
                if message_id in deleted
                else "not deleted (reserved or missing) "
            )
            + message_id
        )


@queue.command("clear")
@click.argument("name")
@pass_ctx
@handle_errors
def clear_cmd(ctx: Context, name: str) -> None:
    """Delete every message of a queue, reserved or not."""
    click.echo(f"cleared {_ops(ctx).clear(name)} messages")
