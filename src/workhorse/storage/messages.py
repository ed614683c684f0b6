"""MessageStore: queues, messages and push-delivery status over named queries.

Every state change of a message is one conditional statement keyed by
(queue, id, reservation id) that says whether it applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

from workhorse.domain.message import Message, NewMessage, encode_push_headers
from workhorse.domain.push import PushStatus, SubscriberStatus
from workhorse.domain.queue import (
    QueueInfo,
    QueueSettings,
    QueueType,
    alerts_from_json,
    dead_letter_from_json,
    push_from_json,
)
from workhorse.storage.base import Connection, Database, Row
from workhorse.storage.stores import IntakeWaiting, _Store

# Stale reservations and due delayed messages made available per reserve call.
PROMOTE_BATCH = 1000
# Dialects whose `messages.post` creates or counts the queue itself, so a post is one
# statement (PostgreSQL: a data-modifying CTE). SQLite runs `upsert_for_post` first.
ONE_STATEMENT_POST = frozenset({"postgres"})
# Dialects where every statement is a round trip to a server, so that saving
# statements (and BEGIN/COMMIT) pays off even at the price of a retry.
NETWORKED = frozenset({"postgres"})
_ROWS_JSON = json.JSONEncoder(separators=(",", ":")).encode
# A post's first try cannot meet its own ids (they are new): only a retry, whose
# first try may have committed, needs ON CONFLICT, which costs PostgreSQL a
# speculative insertion per row (~2 us a row in batches of 100). The first try
# runs the statement without that line.
_SKIP_STORED = "\n    ON CONFLICT (id) DO NOTHING"
# Dialects where single posts to a pull queue go through an intake (SQLite,
# migration 0010) that every other operation on messages admits first.
MESSAGE_INTAKE = frozenset({"sqlite"})


def queue_key(project_id: str, name: str) -> str:
    """The notification key announced when a queue gets available messages."""
    return f"queue:{project_id}:{name}"


PUSH_KEY = "push"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def settings_params(settings: QueueSettings) -> dict[str, Any]:
    """A queue's settings as stored columns."""
    return {
        "type": settings.type.value,
        "message_timeout": settings.message_timeout,
        "message_expiration": settings.message_expiration,
        "push": _json(settings.push.to_dict() if settings.push else None),
        "dead_letter": _json(
            settings.dead_letter.to_dict() if settings.dead_letter else None
        ),
        "alerts": _json(
            [a.to_state() for a in settings.alerts] if settings.alerts else None
        ),
    }


def queue_from_row(row: Row, size: int | None = None) -> QueueInfo:
    """A queue row of either dialect as a QueueInfo."""
    settings = QueueSettings(
        type=QueueType(row["type"]),
        message_timeout=int(row["message_timeout"]),
        message_expiration=int(row["message_expiration"]),
        push=push_from_json(_load(row["push"])),
        dead_letter=dead_letter_from_json(_load(row["dead_letter"])),
        alerts=alerts_from_json(_load(row["alerts"])),
    )
    return QueueInfo(
        project_id=row["project_id"],
        name=row["name"],
        id=row["id"],
        settings=settings,
        size=size,
        total_messages=int(row["total_messages"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _row_values(row: Row) -> tuple[Any, ...]:
    """A row's values in column order (psycopg gives dicts, sqlite3 sequences)."""
    if isinstance(row, dict):
        return tuple(row.values())
    return tuple(cast(Sequence[Any], row))


def reserved_from_rows(rows: Sequence[Row]) -> list[tuple[int, Message]]:
    """Rows of `reserve` or `reserve_ready` as (seq, message), in queue order.

    Their columns are, in order: seq, ord, id, queue_name, body, push_headers,
    reserved_count, reservation_id, visible_at, created_at (read by position: the
    hot path of every consumer).
    """
    values = [_row_values(r) for r in rows]
    values.sort(key=lambda v: (v[1], v[0]))
    return [
        (
            v[0],
            Message(
                id=v[2],
                body=v[4],
                reserved_count=v[6],
                reservation_id=v[7],
                reserved_until=v[8],
                push_headers=None if v[5] is None else json.loads(v[5]),
                queue_name=v[3],
                created_at=v[9],
            ),
        )
        for v in values
    ]


def message_from_row(row: Row, *, reserved: bool = False) -> Message:
    """A message row as a Message (with its reservation when `reserved`)."""
    return Message(
        id=row["id"],
        body=row["body"],
        reserved_count=int(row["reserved_count"]),
        reservation_id=row["reservation_id"] if reserved else None,
        reserved_until=row["visible_at"] if reserved else None,
        push_headers=_load(row["push_headers"]),
        queue_name=row["queue_name"],
        created_at=row["created_at"],
    )


def status_from_row(row: Row) -> SubscriberStatus:
    """A push-status row as a SubscriberStatus."""
    return SubscriberStatus(
        name=row["subscriber_name"],
        url=row["url"],
        position=int(row["position"]),
        status=PushStatus(row["status"]),
        retries_remaining=int(row["retries_remaining"]),
        tries=int(row["tries"]),
        status_code=row["status_code"],
        last_try_at=row["last_try_at"],
        reservation_id=row["reservation_id"],
        error=row["error"],
    )


class MessageStore(_Store):
    """Queues and their messages.

    On SQLite, single posts to a pull queue wait in an intake (`intake_post`)
    until an operation that reads or changes messages admits them: in a write
    transaction it does so first. Admission takes several statements, so a read
    or a single autocommitted statement raises `IntakeWaiting` instead, upon
    which `Storage.run` admits in a write transaction of its own and runs the work
    again (`admitted`: every post acknowledged before the work began is in place;
    later ones may wait). Operations on a reservation (touch, release, hold, a
    delete with a reservation id) need no admission: a reserved message was
    admitted.
    """

    def __init__(
        self,
        conn: Connection,
        db: Database,
        *,
        retried: bool = False,
        can_admit: bool = True,
        admitted: bool = False,
    ) -> None:
        super().__init__(conn, db, retried=retried)
        self.can_admit = can_admit
        self._admission_checked = admitted or db.dialect not in MESSAGE_INTAKE

    # -- intake (SQLite) --------------------------------------------------------------

    def intake_post(
        self,
        project_id: str,
        name: str,
        message_id: str,
        message: NewMessage,
        *,
        now: float | None = None,
    ) -> bool:
        """Post one message through SQLite's intake in one statement, if the queue
        exists and is a pull queue; whether it did (elsewhere: False).
        A repeat of a transaction that may have committed finds the message stored.

        Consumers are told on commit, as for `post`.
        """
        if self.db.dialect not in MESSAGE_INTAKE:
            return False
        if self.retried and self.conn.fetch_one(
            self.q["messages.intake_stored"], {"id": message_id}
        ):
            return True  # the try before committed it
        posted = self.conn.execute(
            self.q["messages.intake_post"],
            (
                message_id,
                message.body,
                encode_push_headers(message.push_headers),
                float(message.delay),
                project_id,
                name,
                now,
            ),
        )
        if posted:
            self.conn.notify(queue_key(project_id, name))
        return bool(posted)

    def depth(self) -> list[tuple[str, str, int]]:
        """(project, queue, messages) for every queue holding messages, counted as
        `size` counts them; single posts still in SQLite's intake included (read
        as they are: nothing is admitted)."""
        rows = self.conn.fetch_all(self.q["messages.depth"])
        return [(r["project_id"], r["queue_name"], int(r["n"])) for r in rows]

    def intake_length(self) -> int:
        """How many single posts wait in SQLite's intake (0 elsewhere)."""
        if self.db.dialect not in MESSAGE_INTAKE:
            return 0
        span = self._intake_span("messages.intake_span")
        return 0 if span is None else span[1] - span[0] + 1

    def admit(self, *, upto: int | None = None) -> int:
        """Move the intake's messages (up to seq `upto`: all of them by default)
        into their queues, in the order they were posted; how many moved.

        Only in a write transaction: its statements must commit together (the
        intake's rowids restart once it is empty, so a separate delete by `upto`
        could take newer posts along).
        """
        if self.db.dialect not in MESSAGE_INTAKE:
            return 0
        if not self.can_admit:
            raise RuntimeError("admission needs a write transaction")
        if upto is None:
            span = self._intake_span("messages.intake_span")
            if span is None:
                return 0
            upto = span[1]
        params = {"upto": upto}
        self.conn.execute(self.q["messages.admit_count"], params)
        self.conn.execute(self.q["messages.admit"], params)
        return self.conn.execute(self.q["messages.admitted"], params)

    def _admit_once(self) -> None:
        """Before the transaction's first look at messages: admit the intake."""
        if self._admission_checked:
            return
        self._admission_checked = True
        span = self._intake_span("messages.intake_span")
        if span is None:
            return
        if not self.can_admit:
            raise IntakeWaiting
        self.admit(upto=span[1])

    # -- queues -----------------------------------------------------------------------

    def _queue(self, query: str, params: dict[str, Any]) -> QueueInfo | None:
        """The queue row `query` returns, or None."""
        row = self.conn.fetch_one(self.q[query], params)
        return None if row is None else queue_from_row(row)

    def create_queue(
        self,
        project_id: str,
        name: str,
        queue_id: str,
        settings: QueueSettings,
        *,
        now: float | None = None,
    ) -> QueueInfo | None:
        """Create a queue; None when it already exists."""
        return self._queue(
            "messages.create_queue",
            {
                "project_id": project_id,
                "name": name,
                "id": queue_id,
                "now": now,
                **settings_params(settings),
            },
        )

    def get_queue(self, project_id: str, name: str) -> QueueInfo | None:
        """A queue's settings and total count (no size), or None."""
        self._admit_once()
        return self._queue(
            "messages.get_queue", {"project_id": project_id, "name": name}
        )

    def lock_queue(self, project_id: str, name: str) -> QueueInfo | None:
        """A queue, locked against settings changes until the transaction ends."""
        self._admit_once()
        return self._queue(
            "messages.lock_queue", {"project_id": project_id, "name": name}
        )

    def update_queue(
        self,
        project_id: str,
        name: str,
        settings: QueueSettings,
        *,
        now: float | None = None,
    ) -> QueueInfo | None:
        """Store new settings; None when the queue does not exist."""
        return self._queue(
            "messages.update_queue",
            {
                "project_id": project_id,
                "name": name,
                "now": now,
                **settings_params(settings),
            },
        )

    def delete_queue(self, project_id: str, name: str) -> bool:
        """Delete a queue, its messages and their push status; False if none."""
        self._admit_once()
        key = {"project_id": project_id, "name": name, "queue_name": name}
        self.conn.execute(self.q["messages.clear"], key)
        self.conn.execute(self.q["messages.clear_push_statuses"], key)
        return bool(self.conn.execute(self.q["messages.delete_queue"], key))

    def list_queues(
        self, project_id: str, *, prefix: str | None, previous: str | None, limit: int
    ) -> list[QueueInfo]:
        """Queues in name order after `previous`, whose names start with `prefix`."""
        self._admit_once()
        rows = self.conn.fetch_all(
            self.q["messages.list_queues"],
            {
                "project_id": project_id,
                "prefix": prefix or None,
                "previous": previous or None,
                "limit": limit,
            },
        )
        return [queue_from_row(r) for r in rows]

    def upsert_for_post(
        self,
        project_id: str,
        name: str,
        queue_id: str,
        count: int,
        *,
        now: float | None = None,
    ) -> tuple[QueueType, int]:
        """Create the queue if missing, count `count` posts: (type, expiration s)."""
        row = self.conn.fetch_one(
            self.q["messages.upsert_for_post"],
            {
                "project_id": project_id,
                "name": name,
                "id": queue_id,
                "count": count,
                "now": now,
            },
        )
        if row is None:  # pragma: no cover - an upsert always returns its row
            raise RuntimeError(f"queue {name!r} was neither inserted nor updated")
        return QueueType(row["type"]), int(row["message_expiration"])

    def push_queues(self) -> list[QueueInfo]:
        """Every push queue of every project."""
        return [
            queue_from_row(r)
            for r in self.conn.fetch_all(self.q["messages.push_queues"])
        ]

    def alert_queues(self) -> list[tuple[str, str, str]]:
        """(project, queue, stored alerts) of every queue with alerts."""
        rows = self.conn.fetch_all(self.q["messages.alert_queues"])
        return [(r["project_id"], r["name"], r["alerts"]) for r in rows]

    def set_alerts_if(self, project_id: str, name: str, *, old: str, new: str) -> bool:
        """Replace stored alerts only if they are still `old` (compare and set)."""
        return bool(
            self.conn.execute(
                self.q["messages.set_alerts_if"],
                {"project_id": project_id, "name": name, "old": old, "new": new},
            )
        )

    def queue_names(self) -> list[tuple[str, str]]:
        """(project, name) of every queue."""
        return [
            (r["project_id"], r["name"])
            for r in self.conn.fetch_all(self.q["messages.queue_names"])
        ]

    def size(self, project_id: str, name: str, *, now: float | None = None) -> int:
        """Messages not deleted and not expired, reserved and delayed ones included."""
        self._admit_once()
        row = self.conn.fetch_one(
            self.q["messages.size"],
            {"project_id": project_id, "name": name, "now": now},
        )
        return int(row["n"]) if row else 0

    # -- messages ---------------------------------------------------------------------

    def post(
        self,
        project_id: str,
        name: str,
        messages: Sequence[tuple[str, NewMessage]],
        *,
        queue_id: str,
        now: float | None = None,
        intake: bool = True,
    ) -> None:
        """Post validated (id, message) pairs, in order; creates the queue if missing.

        On SQLite one message goes through the intake when it can (`intake_post`),
        unless `intake` is False (the caller has just tried).

        The messages are announced to the queue's consumers (and, for push queues,
        to the pushers) when the transaction commits. On PostgreSQL this is one
        statement taking a JSON batch (see `ONE_STATEMENT_POST`); SQLite counts
        the queue, then binds one INSERT per message. Ids already stored are skipped.
        """
        if (
            intake
            and len(messages) == 1
            and self.intake_post(project_id, name, *messages[0], now=now)
        ):
            return
        if self.db.dialect in ONE_STATEMENT_POST:
            rows = [
                {
                    "id": message_id,
                    "body": m.body,
                    "push_headers": encode_push_headers(m.push_headers),
                    "delay": float(m.delay),
                }
                for message_id, m in messages
            ]
            params = {
                "project_id": project_id,
                "queue_name": name,
                "queue_id": queue_id,
                "count": len(messages),
                "rows": _ROWS_JSON(rows),
                "key": queue_key(project_id, name),
                "push_key": PUSH_KEY,
                "now": now,
            }
            sql = self.q["messages.post"]
            self.conn.execute(
                sql if self.retried else sql.replace(_SKIP_STORED, ""), params
            )
            return
        self._admit_once()  # messages posted before these go first
        kind, expiration = self.upsert_for_post(
            project_id, name, queue_id, len(messages), now=now
        )
        # SQLite binds a plain INSERT per message, by position: cheaper for it
        # than a JSON batch, or than binding by name.
        self.conn.execute_many(
            self.q["messages.post"],
            [
                (
                    message_id,
                    m.body,
                    encode_push_headers(m.push_headers),
                    float(m.delay),
                    project_id,
                    name,
                    expiration,
                    now,
                )
                for message_id, m in messages
            ],
        )
        self.conn.notify(queue_key(project_id, name))
        if kind is not QueueType.PULL:
            self.conn.notify(PUSH_KEY)

    def promote(
        self, project_id: str, queue_name: str, *, now: float | None = None
    ) -> int:
        """Make due delayed messages and stale reservations available; how many."""
        self._admit_once()
        return self.conn.execute(
            self.q["messages.promote"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "now": now,
                "limit": PROMOTE_BATCH,
            },
        )

    def reserve(
        self,
        project_id: str,
        queue_name: str,
        *,
        n: int,
        timeout: int,
        now: float | None = None,
    ) -> list[tuple[int, Message]]:
        """Reserve up to `n` messages from the front: (seq, message) in queue order."""
        self._admit_once()
        rows = self.conn.fetch_all(
            self.q["messages.reserve"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "n": n,
                "timeout": timeout,
                "now": now,
            },
        )
        return reserved_from_rows(rows)

    def reserve_ready(
        self,
        project_id: str,
        queue_name: str,
        *,
        n: int,
        timeout: int | None,
        now: float | None = None,
    ) -> list[tuple[int, Message]]:
        """The usual reserve in one statement: (seq, message) in queue order.

        `timeout` None means the queue's own. Returns nothing when the full path
        (`promote`, `reserve`, dead-lettering) is needed: a missing or push queue, a
        delayed message or reservation that came due, a message due for the
        dead-letter queue; and of course when no message is ready.
        """
        self._admit_once()
        rows = self.conn.fetch_all(
            self.q["messages.reserve_ready"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "n": n,
                "timeout": timeout,
                "now": now,
            },
        )
        return reserved_from_rows(rows)

    def dead_letter(
        self,
        project_id: str,
        seqs: Sequence[int],
        *,
        target: str,
        expiration: int,
        now: float | None = None,
    ) -> int:
        """Move just-reserved messages to `target`, undoing that reservation."""
        moved = self.conn.execute(
            self.q["messages.dead_letter"],
            {
                "seqs": self.db.array(seqs),
                "target": target,
                "expiration": expiration,
                "now": now,
            },
        )
        self.conn.notify(queue_key(project_id, target))
        return moved

    def delete_seqs(self, seqs: Sequence[int]) -> int:
        """Delete just-reserved messages (pop)."""
        return self.conn.execute(
            self.q["messages.delete_seqs"], {"seqs": self.db.array(seqs)}
        )

    def get(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        *,
        now: float | None = None,
    ) -> Message | None:
        """One live message, or None."""
        self._admit_once()
        row = self.conn.fetch_one(
            self.q["messages.get"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "id": message_id,
                "now": now,
            },
        )
        return None if row is None else message_from_row(row)

    def get_row(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        *,
        now: float | None = None,
    ) -> Row | None:
        """The raw row of a live message (to explain why a change was refused)."""
        self._admit_once()
        return self.conn.fetch_one(
            self.q["messages.get"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "id": message_id,
                "now": now,
            },
        )

    def peek(
        self, project_id: str, queue_name: str, *, n: int, now: float | None = None
    ) -> list[Message]:
        """The next `n` messages a reserve would return, reserving nothing."""
        self._admit_once()
        rows = self.conn.fetch_all(
            self.q["messages.peek"],
            {"project_id": project_id, "queue_name": queue_name, "n": n, "now": now},
        )
        return [
            Message(
                id=r["id"],
                body=r["body"],
                reserved_count=int(r["reserved_count"]),
                push_headers=_load(r["push_headers"]),
                queue_name=r["queue_name"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    def delete(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        reservation_id: str | None,
        *,
        now: float | None = None,
    ) -> bool:
        """Delete with the live reservation id (none if unreserved); whether it did."""
        if not reservation_id:  # the message may still be in the intake
            self._admit_once()
        return bool(
            self.conn.execute(
                self.q["messages.delete"],
                {
                    "project_id": project_id,
                    "queue_name": queue_name,
                    "id": message_id,
                    "reservation_id": reservation_id or None,
                    "now": now,
                },
            )
        )

    def delete_many(
        self,
        project_id: str,
        queue_name: str,
        items: Sequence[tuple[str, str | None]],
        *,
        now: float | None = None,
    ) -> list[str]:
        """Delete (id, reservation id or None) pairs in one statement; ids deleted."""
        if not all(rid for _, rid in items):  # some may still be in the intake
            self._admit_once()
        rows = self.conn.fetch_all(
            self.q["messages.delete_many"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "ids": self.db.array([i for i, _ in items]),
                "rids": self.db.array([r or None for _, r in items]),
                "now": now,
            },
        )
        return [r["id"] for r in rows]

    def touch(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        reservation_id: str,
        *,
        new_reservation_id: str,
        timeout: int,
        now: float | None = None,
    ) -> float | None:
        """Extend a live reservation under a new id: new expiry, or None if stale."""
        row = self.conn.fetch_one(
            self.q["messages.touch"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "id": message_id,
                "reservation_id": reservation_id,
                "new_reservation_id": new_reservation_id,
                "timeout": timeout,
                "now": now,
            },
        )
        return None if row is None else float(row["visible_at"])

    def release(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        reservation_id: str,
        *,
        delay: float = 0,
        now: float | None = None,
    ) -> bool:
        """Put a live reservation back at the front (after `delay`); whether it did."""
        applied = bool(
            self.conn.execute(
                self.q["messages.release"],
                {
                    "project_id": project_id,
                    "queue_name": queue_name,
                    "id": message_id,
                    "reservation_id": reservation_id,
                    "delay": float(delay),
                    "now": now,
                },
            )
        )
        if applied and not delay:
            self.conn.notify(queue_key(project_id, queue_name))
        return applied

    def hold(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        reservation_id: str,
        *,
        seconds: float,
        now: float | None = None,
    ) -> bool:
        """Keep a live reservation (same id) for `seconds` more; whether it applied."""
        return bool(
            self.conn.execute(
                self.q["messages.hold"],
                {
                    "project_id": project_id,
                    "queue_name": queue_name,
                    "id": message_id,
                    "reservation_id": reservation_id,
                    "seconds": seconds,
                    "now": now,
                },
            )
        )

    def next_due(
        self, project_id: str, queue_name: str, *, now: float | None = None
    ) -> float | None:
        """Seconds until a delayed message or reservation comes due (None: none)."""
        self._admit_once()
        row = self.conn.fetch_one(
            self.q["messages.next_due"],
            {"project_id": project_id, "queue_name": queue_name, "now": now},
        )
        return None if row is None or row["wait"] is None else float(row["wait"])

    def clear(self, project_id: str, queue_name: str) -> int:
        """Delete every message of a queue; how many."""
        self._admit_once()
        key = {"project_id": project_id, "queue_name": queue_name}
        self.conn.execute(self.q["messages.clear_push_statuses"], key)
        return self.conn.execute(self.q["messages.clear"], key)

    def expire(
        self, project_id: str, queue_name: str, *, limit: int, now: float | None = None
    ) -> int:
        """Delete up to `limit` expired messages of a queue."""
        self._admit_once()
        return self.conn.execute(
            self.q["messages.expire"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "limit": limit,
                "now": now,
            },
        )

    def expire_push_statuses(self, *, now: float | None = None) -> int:
        """Forget delivery status kept past its message's expiration."""
        return self.conn.execute(self.q["messages.expire_push_statuses"], {"now": now})

    # -- push delivery status ---------------------------------------------------------

    def insert_push_statuses(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        statuses: Sequence[SubscriberStatus],
        *,
        expires_at: float,
    ) -> None:
        """Start tracking delivery of one message (existing rows are kept)."""
        self.conn.execute_many(
            self.q["messages.insert_push_status"],
            [
                {
                    "message_id": message_id,
                    "subscriber_name": s.name,
                    "project_id": project_id,
                    "queue_name": queue_name,
                    "position": s.position,
                    "url": s.url,
                    "status": s.status.value,
                    "retries_remaining": s.retries_remaining,
                    "expires_at": expires_at,
                }
                for s in statuses
            ],
        )

    def push_statuses(
        self, project_id: str, queue_name: str, message_id: str
    ) -> list[SubscriberStatus]:
        """Delivery status of one message, in subscriber order."""
        rows = self.conn.fetch_all(
            self.q["messages.push_statuses"],
            {
                "project_id": project_id,
                "queue_name": queue_name,
                "message_id": message_id,
            },
        )
        return [status_from_row(r) for r in rows]

    def update_push_statuses(
        self, message_id: str, statuses: Sequence[SubscriberStatus]
    ) -> None:
        """Record delivery attempts."""
        if not statuses:
            return
        self.conn.execute_many(
            self.q["messages.update_push_status"],
            [
                {
                    "message_id": message_id,
                    "subscriber_name": s.name,
                    "status": s.status.value,
                    "status_code": s.status_code,
                    "tries": s.tries,
                    "retries_remaining": s.retries_remaining,
                    "last_try_at": s.last_try_at,
                    "reservation_id": s.reservation_id,
                    "error": s.error,
                }
                for s in statuses
            ],
        )

    def ack_push(
        self,
        project_id: str,
        queue_name: str,
        message_id: str,
        subscriber_name: str,
        reservation_id: str,
        *,
        now: float | None = None,
    ) -> bool:
        """A subscriber acknowledges a 202 with the live reservation; whether it did."""
        return bool(
            self.conn.execute(
                self.q["messages.ack_push"],
                {
                    "project_id": project_id,
                    "queue_name": queue_name,
                    "message_id": message_id,
                    "subscriber_name": subscriber_name,
                    "reservation_id": reservation_id,
                    "now": now,
                },
            )
        )
