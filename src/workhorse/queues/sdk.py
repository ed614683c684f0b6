"""The Python SDK for message queues: `app.queues["orders"]`.

    orders = app.queues["orders"]
    orders.post({"order": 42})                   # dicts and lists are sent as JSON
    for msg in orders.reserve(10, wait=30):
        handle(msg.body)
        orders.delete(msg)

    orders.consume(handle, batch=10)             # reserve -> handle -> delete, forever

Every method is a thin wrapper over `workhorse.queues.MessageQueues`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, overload

from workhorse.domain.message import Message, NewMessage
from workhorse.domain.push import SubscriberStatus
from workhorse.domain.queue import QueueInfo
from workhorse.errors import InvalidInput, NotFound, StaleLease, StorageUnavailable
from workhorse.queues import MessageQueues

log = logging.getLogger(__name__)

Body = str | dict[str, Any] | list[Any]
Handler = Callable[[Message], object]
# A consumer that cannot reach the database tries again after this many seconds.
CONSUMER_BACKOFF_SECONDS = 1.0


def encode_body(body: Body) -> str:
    """Strings are sent as is; dicts and lists as compact JSON."""
    if isinstance(body, str):
        return body
    try:
        return json.dumps(body, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"message body must be a string or JSON-serialisable: {exc}"
        ) from None


class Queue:
    """One named queue. Missing queues are created by the first post."""

    def __init__(self, ops: MessageQueues, name: str) -> None:
        self.ops = ops
        self.name = name

    def __repr__(self) -> str:
        return f"<Queue {self.name!r}>"

    # -- the queue --------------------------------------------------------------------

    def info(self) -> QueueInfo:
        """Settings and counts (`size` includes reserved and delayed messages)."""
        return self.ops.get_queue(self.name)

    @property
    def size(self) -> int:
        """Messages not yet deleted or expired."""
        return self.info().size or 0

    def create(self, **settings: Any) -> QueueInfo:
        """Create or update with IronMQ settings (`message_timeout=30`, ...)."""
        return self.ops.create_queue(self.name, settings)

    def update(self, **changes: Any) -> QueueInfo:
        """Change some settings; alerts given are added."""
        return self.ops.update_queue(self.name, changes)

    def remove(self) -> None:
        """Delete the queue and every message in it."""
        self.ops.delete_queue(self.name)

    def clear(self) -> int:
        """Delete every message, reserved or not; how many."""
        return self.ops.clear(self.name)

    # -- messages ---------------------------------------------------------------------

    @overload
    def post(
        self,
        body: str | dict[str, Any],
        *,
        delay: float = 0,
        push_headers: Mapping[str, str] | None = None,
    ) -> str: ...

    @overload
    def post(
        self,
        body: list[Any],
        *,
        delay: float = 0,
        push_headers: Mapping[str, str] | None = None,
    ) -> list[str]: ...

    def post(
        self,
        body: Body,
        *,
        delay: float = 0,
        push_headers: Mapping[str, str] | None = None,
    ) -> str | list[str]:
        """Post one message (returns its id) or a list of up to 100 (returns their ids).

        A list is several messages; to send one JSON array, pass it as a string.
        Items may also be `NewMessage`s with their own delay and push headers.
        Returns once the messages are committed.
        """
        if isinstance(body, list):
            items = [
                b
                if isinstance(b, NewMessage)
                else NewMessage(encode_body(b), delay, push_headers)
                for b in body
            ]
            return self.ops.post(self.name, items)
        return self.ops.post(
            self.name, [NewMessage(encode_body(body), delay, push_headers)]
        )[0]

    def reserve(
        self,
        n: int = 1,
        *,
        timeout: float | None = None,
        wait: float = 0,
        delete: bool = False,
    ) -> list[Message]:
        """Reserve up to `n` messages (long-polling up to `wait` s for the first)."""
        return self.ops.reserve(self.name, n, timeout=timeout, wait=wait, delete=delete)

    def get(self, message_id: str) -> Message:
        """One message by id."""
        return self.ops.get_message(self.name, message_id)

    def peek(self, n: int = 1) -> list[Message]:
        """The next `n` messages, without reserving them."""
        return self.ops.peek(self.name, n)

    def delete(self, message: Message | str, reservation_id: str | None = None) -> None:
        """Delete a message (a reserved one with its reservation id, from `message`).

        Raises:
            StaleLease: the reservation timed out or was replaced.
        """
        if isinstance(message, Message):
            self.ops.delete(
                self.name, message.id, reservation_id or message.reservation_id
            )
        else:
            self.ops.delete(self.name, message, reservation_id)

    def delete_many(self, messages: Iterable[Message | str]) -> list[str]:
        """Delete up to 100 messages in one statement; the ids that were deleted."""
        items = [
            (m.id, m.reservation_id) if isinstance(m, Message) else (m, None)
            for m in messages
        ]
        return self.ops.delete_many(self.name, items)

    def touch(self, message: Message, *, timeout: float | None = None) -> Message:
        """Extend a reservation; returns the message with its new reservation id."""
        if message.reservation_id is None:
            raise InvalidInput("only a reserved message can be touched")
        rid = self.ops.touch(
            self.name, message.id, message.reservation_id, timeout=timeout
        )
        return replace(
            message, reservation_id=rid, reserved_count=message.reserved_count + 1
        )

    def release(self, message: Message, *, delay: float = 0) -> None:
        """Put a reserved message back at the front (available after `delay` s)."""
        if message.reservation_id is None:
            raise InvalidInput("only a reserved message can be released")
        self.ops.release(self.name, message.id, message.reservation_id, delay=delay)

    def push_statuses(self, message: Message | str) -> list[SubscriberStatus]:
        """Delivery status per subscriber of a push-queue message."""
        return self.ops.push_statuses(
            self.name, message.id if isinstance(message, Message) else message
        )

    # -- consuming --------------------------------------------------------------------

    def consumer(self, handler: Handler, **options: Any) -> Consumer:
        """A `Consumer` of this queue (see its arguments): `.run()` or `.start()`."""
        return Consumer(self, handler, **options)

    def consume(
        self, handler: Handler, *, limit: int | None = None, **options: Any
    ) -> int:
        """Reserve -> `handler(message)` -> delete, until stopped or `limit` handled.

        Blocks; returns how many messages were handled. See `Consumer` for options.
        """
        return Consumer(self, handler, **options).run(limit=limit)


class QueueSet:
    """`app.queues`: the queues of the app's project by name."""

    def __init__(self, ops: MessageQueues) -> None:
        self.ops = ops

    def __getitem__(self, name: str) -> Queue:
        return Queue(self.ops, name)

    def list(
        self,
        *,
        prefix: str | None = None,
        previous: str | None = None,
        per_page: int = 30,
    ) -> list[QueueInfo]:
        """Queues in name order (`previous`: the last name of the page before)."""
        return self.ops.list_queues(prefix=prefix, previous=previous, per_page=per_page)

    def create(self, name: str, **settings: Any) -> Queue:
        """Create a queue with settings (or update an existing one)."""
        self.ops.create_queue(name, settings)
        return Queue(self.ops, name)


class _Keeper:
    """Touches the messages a consumer holds, so long handlers keep them."""

    def __init__(self, queue: Queue, interval: float, stop: threading.Event) -> None:
        self.queue = queue
        self.interval = interval
        self.stop = stop
        self.lock = threading.RLock()
        self.held: dict[str, Message] = {}
        self._thread = threading.Thread(
            target=self._loop, name=f"touch-{queue.name}", daemon=True
        )
        self._thread.start()

    def hold(self, messages: Iterable[Message]) -> None:
        with self.lock:
            for m in messages:
                self.held[m.id] = m

    def take(self, message_id: str) -> Message | None:
        """Stop touching a message: its latest copy (None: reservation lost)."""
        with self.lock:
            return self.held.pop(message_id, None)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                for message_id, message in list(self.held.items()):
                    try:
                        self.held[message_id] = self.queue.touch(message)
                    except (StaleLease, NotFound):
                        log.warning(
                            "lost the reservation of message %s",
                            message_id,
                            extra={"event": "consumer_reservation_lost"},
                        )
                        del self.held[message_id]
                    except StorageUnavailable as exc:
                        log.warning(
                            "could not touch %s: %s",
                            message_id,
                            exc,
                            extra={"event": "consumer_touch_failed"},
                        )
                    except Exception:  # the thread must outlive any one bad touch
                        log.exception(
                            "could not touch %s",
                            message_id,
                            extra={"event": "consumer_touch_failed"},
                        )

    def join(self) -> None:
        self._thread.join(timeout=5)


class Consumer:
    """A continuous-stream consumer: reserve -> handler -> delete, touching long
    handlers and releasing a message whose handler raised.

    Args:
        queue: the queue to consume.
        handler: called with each message; returning means done (the message is
            deleted), raising means retry (it is released, after `release_delay`).
        batch: messages reserved per call (1-100), handled one after another.
        wait: long-poll seconds per reserve (at most 30).
        timeout: reservation timeout (None: the queue's); the reservation is
            touched every third of it while messages are held. Note that each
            touch counts towards the queue's `max_reservations`.
        release_delay: seconds a failed message waits before it is available again.
        stop: an event that stops the consumer when set (also `.stop()`).
        stop_when_idle: return once a reserve finds nothing within `wait` (for
            consumers that run as tasks and should end when the backlog is gone).

    Delivery is at least once: a handler may see a message again after a crash
    or a lost reservation, so handlers should be idempotent.
    """

    def __init__(
        self,
        queue: Queue,
        handler: Handler,
        *,
        batch: int = 1,
        wait: float = 30,
        timeout: float | None = None,
        release_delay: float = 0,
        stop: threading.Event | None = None,
        stop_when_idle: bool = False,
    ) -> None:
        self.queue = queue
        self.stop_when_idle = stop_when_idle
        self.handler = handler
        self.batch = batch
        self.wait = wait
        self.timeout = timeout
        self.release_delay = release_delay
        self.stopping = stop or threading.Event()
        self.handled = 0
        self.failed = 0
        self._thread: threading.Thread | None = None

    def stop(self) -> None:
        """Finish the message in hand, then return from `run`."""
        self.stopping.set()

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        self._thread = threading.Thread(
            target=self.run, name=f"consume-{self.queue.name}", daemon=True
        )
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> None:
        """Wait for a consumer started with `start` to return."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, limit: int | None = None) -> int:
        """Consume until stopped or `limit` messages were taken (failed ones count).

        Returns how many messages were taken.
        """
        try:
            info = self.queue.info()
        except NotFound:  # consumers may start before the first producer
            info = self.queue.ops.create_queue(self.queue.name)
        seconds = self.timeout or info.settings.message_timeout
        finished = (
            threading.Event()
        )  # ends the keeper; the caller's `stop` is left alone
        keeper = _Keeper(self.queue, max(seconds / 3, 0.2), finished)
        done = 0
        try:
            while not self.stopping.is_set() and (limit is None or done < limit):
                want = self.batch if limit is None else min(self.batch, limit - done)
                try:
                    messages = self.queue.ops.reserve(
                        self.queue.name,
                        want,
                        timeout=self.timeout,
                        wait=self.wait,
                        stop=self.stopping,
                    )
                except StorageUnavailable as exc:
                    log.warning(
                        "consumer cannot reserve: %s",
                        exc,
                        extra={"event": "consumer_storage_down"},
                    )
                    self.stopping.wait(CONSUMER_BACKOFF_SECONDS)
                    continue
                if not messages and self.stop_when_idle:
                    break
                keeper.hold(messages)
                for message in messages:
                    if self.stopping.is_set():  # hand the rest back for other consumers
                        self._finish(keeper, message, release=True, delay=0)
                        continue
                    self._handle(keeper, message)
                    done += 1
        finally:
            finished.set()
            keeper.join()
        return done

    def _handle(self, keeper: _Keeper, message: Message) -> None:
        try:
            self.handler(message)
        except Exception:
            self.failed += 1
            log.exception(
                "handler failed on message %s",
                message.id,
                extra={"event": "message_handler_failed"},
            )
            self._finish(keeper, message, release=True, delay=self.release_delay)
            return
        self.handled += 1
        self._finish(keeper, message, release=False)

    def _finish(
        self, keeper: _Keeper, message: Message, *, release: bool, delay: float = 0
    ) -> None:
        with keeper.lock:
            current = keeper.take(message.id)
            if current is None:
                return  # the reservation was lost; the message will come back
            try:
                if release:
                    self.queue.release(current, delay=delay)
                else:
                    self.queue.delete(current)
            except (StaleLease, NotFound, StorageUnavailable) as exc:
                log.warning(
                    "message %s: %s; it will be delivered again",
                    message.id,
                    exc,
                    extra={"event": "consumer_reservation_lost"},
                )
