"""Pusher: delivers push-queue messages to their subscribers, and runs queue upkeep
(alert checks, expiry of old messages).

Every runner runs one. A delivery round holds a reservation on the message, so
any number of pushers share the work without sending a message twice at once;
after a crash the reservation runs out and the round is retried (deliveries are
at least once). Requests run on a bounded thread pool with a timeout each.

    pusher = Pusher(storage, PusherConfig(concurrency=8))
    pusher.start()
    ...
    pusher.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from workhorse.client import Client
from workhorse.domain.message import MAX_PER_CALL, Message, NewMessage
from workhorse.domain.push import (
    Attempt,
    accepted,
    after_attempt,
    due,
    host_allowed,
    parse_allow_list,
    parse_internal_url,
    request_headers,
    round_timeout,
)
from workhorse.domain.queue import QueueInfo, QueueType, Subscriber
from workhorse.errors import NotFound, StorageUnavailable, WorkhorseError
from workhorse.queues import MessageQueues, check_alerts, expire_messages
from workhorse.queues.push import PushRounds
from workhorse.storage import Storage
from workhorse.storage.messages import PUSH_KEY

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], list[str]]
RESPONSE_SNIPPET_BYTES = 300


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (IP literals resolve to themselves)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class PusherConfig:
    """How deliveries run.

    Attributes:
        concurrency: deliveries in flight at once (threads).
        request_timeout: seconds one subscriber request may take.
        idle_seconds: with nothing announced, look for due retries this often.
        alert_period: seconds between alert checks.
        expire_period: seconds between sweeps of expired messages.
        message_url_base: the public HTTP base (e.g. `https://mq.example.com`) used
            in `Iron-Subscriber-Message-Url`; empty gives a path only.
    """

    concurrency: int = 8
    request_timeout: float = 10.0
    idle_seconds: float = 1.0
    alert_period: float = 1.0
    expire_period: float = 30.0
    message_url_base: str = ""


class Pusher:
    """Claims due push messages, delivers them on a thread pool, records the outcome."""

    def __init__(
        self,
        storage: Storage,
        config: PusherConfig | None = None,
        *,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.storage = storage
        self.config = config or PusherConfig()
        self.allow = parse_allow_list(storage.settings.push_allow)
        self.resolver = resolver
        # The HTTP client (and httpx itself) is loaded on the first webhook: most
        # runners never deliver one, and importing it slows every start.
        self._http_client: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(
            self.config.concurrency, thread_name_prefix="push"
        )
        self._futures: set[Future[bool]] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: object | None = None
        self._offset = 0
        self._next_alerts = 0.0
        self._next_expire = 0.0

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Run the delivery loop in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="pusher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; give deliveries in flight up to `timeout` seconds."""
        self._stop.set()
        wake = getattr(self._listener, "wake", None)
        if callable(wake):
            wake()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        with self._cond:
            pending = set(self._futures)
        wait_futures(pending, timeout=timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._http_client is not None:
            self._http_client.close()

    def _http(self) -> httpx.Client:
        with self._http_lock:
            if self._http_client is None:
                import httpx  # see __init__

                self._http_client = httpx.Client(
                    timeout=self.config.request_timeout,
                    follow_redirects=False,
                    trust_env=False,
                )
            return self._http_client

    def _loop(self) -> None:
        listener = self.storage.listen([PUSH_KEY])
        self._listener = listener
        try:
            while not self._stop.is_set():
                try:
                    claimed = self.run_once()
                except StorageUnavailable as exc:
                    log.warning(
                        "push round skipped: %s",
                        exc,
                        extra={"event": "push_round_skipped"},
                    )
                    claimed = 0
                except Exception:  # the loop must outlive any one bad round
                    log.exception(
                        "push round failed", extra={"event": "push_round_failed"}
                    )
                    claimed = 0
                self.upkeep()
                if self._stop.is_set():
                    break
                if claimed:
                    self._wait_for_room()
                else:
                    listener.wait(self.config.idle_seconds)
        finally:
            listener.close()

    def _wait_for_room(self) -> None:
        with self._cond:
            while (
                len(self._futures) >= self.config.concurrency
                and not self._stop.is_set()
            ):
                self._cond.wait(self.config.idle_seconds)

    # -- one pass ---------------------------------------------------------------------

    def run_once(self, now: float | None = None, *, wait: bool = False) -> int:
        """Claim due messages of push queues up to the free threads and deliver them.

        Args:
            now: a fixed time for claims and records (tests); None uses the
                database clock.
            wait: block until the deliveries started here have finished.

        Returns:
            How many messages were claimed.
        """
        with self._cond:
            free = self.config.concurrency - len(self._futures)
        queues = self.storage.run(
            lambda tx: tx.messages.push_queues(), write=False, retry_for=0
        )
        if not queues or free <= 0:
            return 0
        self._offset = (self._offset + 1) % len(queues)
        started: list[Future[bool]] = []
        for queue in queues[self._offset :] + queues[: self._offset]:
            if free <= 0:
                break
            ops = PushRounds(self.storage, project_id=queue.project_id)
            subscribers = queue.settings.push.subscribers if queue.settings.push else ()
            timeout = round_timeout(len(subscribers), self.config.request_timeout)
            claimed = ops.claim(
                queue, n=min(free, MAX_PER_CALL), timeout=timeout, now=now
            )
            for message in claimed:
                started.append(self._submit(ops, queue, message, now))
            free -= len(claimed)
        if wait:
            for future in started:
                future.result()
        return len(started)

    def _submit(
        self, ops: PushRounds, queue: QueueInfo, message: Message, now: float | None
    ) -> Future[bool]:
        future = self._pool.submit(self._deliver_logged, ops, queue, message, now)
        with self._cond:
            self._futures.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[bool]) -> None:
        with self._cond:
            self._futures.discard(future)
            self._cond.notify_all()

    def _deliver_logged(
        self, ops: PushRounds, queue: QueueInfo, message: Message, now: float | None
    ) -> bool:
        try:
            return self.deliver(ops, queue, message, now=now)
        except Exception:
            log.exception(
                "delivering message %s of %s failed; retried when its reservation ends",
                message.id,
                queue.name,
                extra={"event": "push_delivery_failed"},
            )
            return False

    def upkeep(self, now: float | None = None) -> None:
        """Check alerts and expire old messages when their periods are due."""
        clock = time.monotonic()
        try:
            if clock >= self._next_alerts:
                self._next_alerts = clock + self.config.alert_period
                check_alerts(self.storage, now=now)
            if clock >= self._next_expire:
                self._next_expire = clock + self.config.expire_period
                expire_messages(self.storage, now=now)
        except StorageUnavailable as exc:
            log.warning(
                "queue upkeep skipped: %s", exc, extra={"event": "queue_upkeep_skipped"}
            )
        except Exception:
            log.exception("queue upkeep failed", extra={"event": "queue_upkeep_failed"})

    # -- one message ------------------------------------------------------------------

    def deliver(
        self,
        ops: PushRounds,
        queue: QueueInfo,
        message: Message,
        *,
        now: float | None = None,
    ) -> bool:
        """One delivery round of a claimed message; whether its outcome was recorded."""
        push = queue.settings.push
        if push is None or message.reservation_id is None:
            return False
        statuses = {s.name: s for s in ops.begin(queue, message, now=now)}
        subscribers = {s.name: s for s in push.subscribers}
        clock = time.time() if now is None else now
        for status in due(list(statuses.values())):
            attempt = self.send(queue, message, subscribers[status.name])
            updated = after_attempt(
                status, attempt, now=clock, reservation_id=message.reservation_id
            )
            statuses[status.name] = updated
            if queue.settings.type is QueueType.UNICAST and accepted(updated):
                break
        return ops.end(
            queue, message, sorted(statuses.values(), key=lambda s: s.position), now=now
        )

    def send(
        self, queue: QueueInfo, message: Message, subscriber: Subscriber
    ) -> Attempt:
        """Deliver a message to one subscriber."""
        scheme = urlsplit(subscriber.url).scheme
        if scheme in ("ironmq", "ironworker"):
            return self._send_internal(queue, message, subscriber)
        return self._send_http(queue, message, subscriber)

    def _send_internal(
        self, queue: QueueInfo, message: Message, subscriber: Subscriber
    ) -> Attempt:
        target = parse_internal_url(subscriber.url)
        project = target.project_id or queue.project_id
        if project != queue.project_id:
            return Attempt(None, "targets in another project are not supported")
        try:
            if target.kind == "ironmq":
                if target.name == queue.name:
                    return Attempt(None, "a queue cannot push into itself")
                MessageQueues(self.storage, project_id=project).post(
                    target.name, [NewMessage(message.body)]
                )
            else:
                Client(self.storage, project_id=project).queue(
                    target.name, message.body
                )
        except NotFound as exc:
            return Attempt(404, str(exc))
        except WorkhorseError as exc:
            return Attempt(None, str(exc))
        return Attempt(200)

    def _send_http(
        self, queue: QueueInfo, message: Message, subscriber: Subscriber
    ) -> Attempt:
        http = self._http()
        import httpx  # loaded by self._http() already

        url = httpx.URL(subscriber.url)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = self.resolver(host, port)
        except OSError as exc:
            return Attempt(None, f"cannot resolve {host}: {exc}")
        refusal = host_allowed(host, addresses, self.allow)
        if refusal:
            return Attempt(None, refusal)
        headers = request_headers(
            subscriber_headers=subscriber.headers,
            push_headers=message.push_headers,
            message_id=message.id,
            reservation_id=message.reservation_id or "",
            subscriber_name=subscriber.name,
            message_url=self._message_url(queue, message),
        )
        # Connect to the address that was checked, so DNS cannot change it in between.
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        try:
            with http.stream(
                "POST",
                url.copy_with(host=addresses[0]),
                content=message.body.encode("utf-8"),
                headers=headers,
                extensions=extensions,
            ) as response:
                code = response.status_code
                snippet = b""
                if not 200 <= code < 300:
                    for chunk in response.iter_raw():
                        snippet += chunk
                        if len(snippet) >= RESPONSE_SNIPPET_BYTES:
                            break
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        text = snippet[:RESPONSE_SNIPPET_BYTES].decode("utf-8", "replace").strip()
        return Attempt(
            code, f"subscriber answered {code}" + (f": {text}" if text else "")
        )

    def _message_url(self, queue: QueueInfo, message: Message) -> str:
        path = (
            f"/3/projects/{quote(queue.project_id, safe='')}/queues/"
            f"{quote(queue.name, safe='')}/messages/{message.id}"
        )
        return self.config.message_url_base.rstrip("/") + path
