"""Stores written once over named queries; `Storage` is what the engine holds.

Usage:
    with storage.transaction() as tx:
        tx.tasks.insert_many([...])

`Storage.run(fn)` runs `fn(tx)` in a transaction and retries it while the database
is locked or unreachable, with capped exponential backoff.
"""

from __future__ import annotations

import builtins
import json
import logging
import operator
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, LiteralString, TypeVar

from workhorse.domain import rate as rate_bucket
from workhorse.domain.task import Attempt, NewTask, Outcome, Task, TaskStatus
from workhorse.errors import StorageCorrupt, StorageUnavailable
from workhorse.settings import Settings
from workhorse.storage.base import Connection, Database, Listener, Row
from workhorse.storage.shared_commits import SharedCommits

if TYPE_CHECKING:
    from workhorse.storage.fanins import FanInStore
    from workhorse.storage.messages import MessageStore
    from workhorse.storage.projects import ProjectStore
    from workhorse.storage.schedules import ScheduleStore

log = logging.getLogger(__name__)
T = TypeVar("T")

_TASK_FIELDS = tuple(Task.__dataclass_fields__)
_BOOL_FIELDS = ("backoff", "cancel_requested")
# Output known only when an attempt ends is stored after any streamed chunks.
LAST_CHUNK = 1_000_000


_STATUS_AT = _TASK_FIELDS.index("status")
# Positions in a row that starts with seq.
_PRIORITY_AT = 1 + _TASK_FIELDS.index("priority")
_RUN_AT_AT = 1 + _TASK_FIELDS.index("run_at")
_BOOLS_AT = tuple(_TASK_FIELDS.index(n) for n in _BOOL_FIELDS)
_N_FIELDS = len(_TASK_FIELDS)
_STATUSES = {s.value: s for s in TaskStatus}
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":")).encode


def task_from_row(row: Row) -> Task:
    """Build a Task from a full `tasks` row of either dialect.

    The table's columns are `seq` followed by Task's fields in the same order
    (tests/unit/test_task_columns.py keeps them in step), so a row maps by position.
    """
    values = list(row.values() if isinstance(row, dict) else row)[1 : _N_FIELDS + 1]
    values[_STATUS_AT] = _STATUSES[values[_STATUS_AT]]
    for i in _BOOLS_AT:
        values[i] = bool(values[i])
    return Task(*values)


@dataclass(frozen=True, slots=True)
class Claimed:
    """Tasks leased by one claim, and the token that fences them."""

    token: str
    tasks: list[Task]


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt whose outcome was recorded (its lease still held)."""

    task_id: str
    project_id: str
    attempt: int
    status: str
    parent_id: str | None


class ClaimedRows:
    """The rows one claim leased, not yet decoded into Tasks.

    Parts are JSON arrays of rows (SQLite) or fetched rows (PostgreSQL); rows start
    with seq, then Task's fields in order.
    """

    __slots__ = ("_parts", "capped", "count", "token_due")

    def __init__(self) -> None:
        self._parts: list[str | Sequence[Row]] = []
        self.count = 0
        self.capped = False  # codes with a concurrency cap or a rate limit had due work
        # Seconds until a rate-limited code that held tasks back has a token again.
        self.token_due: float | None = None

    def note_token_due(self, seconds: float) -> None:
        """A rate-limited code has a start allowed again in `seconds` (the soonest wins)."""
        if self.token_due is None or seconds < self.token_due:
            self.token_due = seconds

    def add(self, part: str | Sequence[Row], count: int) -> None:
        """Keep one statement's rows (`count` of them)."""
        self._parts.append(part)
        self.count += count

    def tasks(self) -> list[Task]:
        """The tasks, highest priority first, then by run_at, then FIFO."""
        rows: list[Any] = []
        for part in self._parts:
            if isinstance(part, str):
                rows.extend(json.loads(part))
            else:
                rows.extend(list(r.values()) for r in part)
        rows.sort(key=lambda r: (-r[_PRIORITY_AT], r[_RUN_AT_AT], r[0]))
        return [task_from_row(r) for r in rows]


@dataclass(frozen=True, slots=True)
class OutcomeBatch:
    """Outcomes encoded as the JSON parameters of the finish statements.

    Encoding them before the transaction opens keeps that work out of the time
    the transaction holds the write lock.
    """

    count: int
    finish: str
    attempts: str | None  # attempts followed by a retry, copied to task_attempts
    logs: str | None  # output known only at the end

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> OutcomeBatch:
        """Encode `outcomes`."""
        batch = []
        retried = []
        logs = []
        for o in outcomes:
            status = o.status.value
            if o.retry_delay is not None:
                retried.append(
                    {
                        "id": o.task_id,
                        "token": o.lease_token,
                        "status": status,
                        "error": o.error,
                    }
                )
                status = "queued"
            if o.log:
                logs.append({"id": o.task_id, "token": o.lease_token, "log": o.log})
            batch.append(
                {
                    "id": o.task_id,
                    "token": o.lease_token,
                    "status": status,
                    "retry_delay": o.retry_delay or 0.0,
                    "result": o.result,
                    "error": o.error,
                }
            )
        return cls(
            count=len(batch),
            finish=_COMPACT_JSON(batch),
            attempts=_COMPACT_JSON(retried) if retried else None,
            logs=_COMPACT_JSON(logs) if logs else None,
        )


class _Store:
    def __init__(
        self, conn: Connection, db: Database, *, retried: bool = False
    ) -> None:
        self.conn = conn
        self.db = db
        self.q: Mapping[str, LiteralString] = db.queries
        # Whether this transaction repeats one whose outcome is unknown (the
        # connection was lost, maybe after its commit landed).
        self.retried = retried

    def _intake_span(self, query: str) -> tuple[int, int] | None:
        """The first and last seq waiting in an intake (SQLite), None when empty."""
        span = self.conn.fetch_one(self.q[query])
        if span is None or span["first"] is None:
            return None
        return int(span["first"]), int(span["last"])

    def db_now(self, *, now: float | None = None) -> float:
        """The database's time, by which due times are judged (`now` itself when given)."""
        row = self.conn.fetch_one(self.q["schedules.db_now"], {"now": now})
        assert row is not None  # noqa: S101 - a SELECT without FROM returns a row
        return float(row["now"])


_NEW_TASK_FIELDS = tuple(NewTask.__dataclass_fields__)
_new_task_values = operator.attrgetter(*_NEW_TASK_FIELDS)


def _new_task_row(task: NewTask) -> dict[str, Any]:
    return dict(zip(_NEW_TASK_FIELDS, _new_task_values(task), strict=True))


# SQLite's intake (migration 0009). A producer with no runner admitting for it
# looks at the intake's length every INTAKE_CHECK_EVERY enqueues and admits it
# once it holds INTAKE_LIMIT tasks, so that reads by id, which scan
# it, stay cheap. A claim admits at most ADMIT_PER_CLAIM tasks, to keep its hold on
# the write lock short.
INTAKE_CHECK_EVERY = 1024
INTAKE_LIMIT = 10_000
ADMIT_PER_CLAIM = 5_000
# A unique task whose key's holder finishes between its insert and the lookup of
# that holder is inserted again; this many rounds at most.
UNIQUE_INSERT_TRIES = 5
# The intake holds NewTask's fields up to `backoff` (no schedule, no parent).
_INTAKE_VALUES = _NEW_TASK_FIELDS.index("schedule_id")


class TaskStore(_Store):
    """Tasks: insert, claim, finish (fenced), heartbeat, cancel, rescue, read."""

    def enqueue(self, task: NewTask, *, now: float | None = None) -> None:
        """Queue one task in one statement; idle runners are told on commit.

        On SQLite a plain task (no parent, no schedule) goes to the intake: one
        page written instead of six. Everything else is `insert_many([task])`.
        """
        if (
            self.db.dialect != "sqlite"
            or task.parent_id is not None
            or task.schedule_id is not None
            or task.unique_key is not None
        ):
            self.insert_many([task], now=now)
            return
        self.conn.execute(
            self.q["tasks.intake"], (*_new_task_values(task)[:_INTAKE_VALUES], now)
        )
        self.conn.notify(f"tasks:{task.cluster}")

    def intake_length(self) -> int:
        """How many tasks wait in SQLite's intake (0 elsewhere)."""
        if self.db.dialect != "sqlite":
            return 0
        span = self._intake_span("tasks.intake_span")
        return 0 if span is None else span[1] - span[0] + 1

    def admit(self, *, limit: int | None = None) -> int:
        """Move tasks from SQLite's intake into `tasks`, oldest first (all of them,
        or the `limit` oldest); how many moved. A no-op elsewhere."""
        if self.db.dialect != "sqlite":
            return 0
        span = self._intake_span("tasks.intake_span")
        if span is None:
            return 0
        first, upto = span
        if limit is not None:
            upto = min(upto, first + limit - 1)
        self.conn.execute(self.q["tasks.admit"], {"upto": upto})
        return self.conn.execute(self.q["tasks.admitted"], {"upto": upto})

    def insert_many(
        self, tasks: Sequence[NewTask], *, now: float | None = None
    ) -> builtins.list[str]:
        """Queue tasks; idle runners are told on commit. Returns each task's id, or
        for a unique task that stored nothing, the id of the task holding its key.

        PostgreSQL takes a single task in one plain INSERT (atomic on its own, so
        callers may skip BEGIN/COMMIT: `Storage.run(..., single_statement=True)`)
        and a batch through COPY (in a transaction); a retry, whose first try may
        have committed, goes through one INSERT of a JSON batch that skips ids
        already stored. SQLite, always in a transaction, binds one plain
        INSERT per task: cheaper for it than unpacking a JSON batch. A batch with
        unique tasks takes `_insert_unique` (two statements, in a transaction).
        """
        if any(t.unique_key is not None for t in tasks):
            return self._insert_unique(tasks, now)
        if self.db.dialect == "sqlite":
            # Tasks queued earlier through the intake go first: same-millisecond
            # tasks run in seq order.
            self.admit()
            last = (now,)
            self.conn.copy_in(
                self.q["tasks.insert"], [_new_task_values(t) + last for t in tasks]
            )
            for cluster in {t.cluster for t in tasks}:
                self.conn.notify(f"tasks:{cluster}")
        elif self.retried:
            batch = _COMPACT_JSON([_new_task_row(t) for t in tasks])
            self.conn.fetch_all(self.q["tasks.insert"], {"batch": batch, "now": now})
        elif len(tasks) == 1:
            row = _new_task_row(tasks[0])
            row["now"] = now
            self.conn.execute(self.q["tasks.insert_one"], row)
        else:
            self._copy(tasks, now)
        return [t.id for t in tasks]

    def insert_unique_one(
        self, task: NewTask, *, now: float | None = None
    ) -> str | None:
        """PostgreSQL: one task with a unique key in one statement (run it with
        `single_statement=True`). Its id, or the id of the task holding its key; None
        when that one finished meanwhile (then use `insert_many`)."""
        row = self.conn.fetch_one(
            self.q["tasks.insert_unique_one"], {**_new_task_row(task), "now": now}
        )
        return None if row is None else str(row["holder"])

    def _insert_unique(
        self, tasks: Sequence[NewTask], now: float | None
    ) -> builtins.list[str]:
        """Insert tasks some of which carry a unique key; see `insert_many`.

        The partial unique index decides, so racing producers cannot both store a
        key. A task that stored nothing takes the id of the task holding its key;
        if that one finished in between (PostgreSQL, another transaction), the
        insert is tried again for it.
        """
        ids = {t.id: t.id for t in tasks}
        pending = list(tasks)
        for _ in range(UNIQUE_INSERT_TRIES):
            skipped = self._insert_skipping(pending, now)
            if not skipped:
                return [ids[t.id] for t in tasks]
            rows = self.conn.fetch_all(
                self.q["tasks.unique_holders"],
                {
                    "project_id": skipped[0].project_id,
                    "batch": _COMPACT_JSON(
                        [
                            {
                                "id": t.id,
                                "code_name": t.code_name,
                                "unique_key": t.unique_key,
                            }
                            for t in skipped
                        ]
                    ),
                },
            )
            holders = {r["id"]: r["holder"] for r in rows}
            pending = []
            for t in skipped:
                if holders.get(t.id) is None:
                    pending.append(t)
                else:
                    ids[t.id] = holders[t.id]
            if not pending:
                return [ids[t.id] for t in tasks]
        raise StorageUnavailable(
            "could not queue a unique task: the task holding its key kept changing"
        )

    def _insert_skipping(
        self, tasks: Sequence[NewTask], now: float | None
    ) -> builtins.list[NewTask]:
        """Insert what the unique index admits; the tasks that stored nothing."""
        if self.db.dialect == "sqlite":
            self.admit()
            sql, last = self.q["tasks.insert"], (now,)
            skipped = [
                t
                for t in tasks
                if self.conn.execute(sql, _new_task_values(t) + last) == 0
            ]
            if len(skipped) < len(tasks):
                for cluster in {t.cluster for t in tasks}:
                    self.conn.notify(f"tasks:{cluster}")
            return skipped
        batch = _COMPACT_JSON([_new_task_row(t) for t in tasks])
        rows = self.conn.fetch_all(self.q["tasks.insert"], {"batch": batch, "now": now})
        stored = {r["id"] for r in rows}
        return [t for t in tasks if t.id not in stored]

    def _copy(self, tasks: Sequence[NewTask], now: float | None) -> None:
        at = self.db_now(now=now)
        self.conn.copy_in(
            self.q["tasks.copy"],
            [
                (t.id, t.project_id, t.code_name, t.kind, t.code_revision, t.payload,
                 "queued", t.priority, at + t.delay, t.timeout, t.label, t.cluster,
                 t.retries, t.retries_delay, t.backoff, at, t.schedule_id, t.parent_id)
                for t in tasks
            ],
        )  # fmt: skip
        for cluster in {t.cluster for t in tasks}:
            self.conn.notify(f"tasks:{cluster}")

    def get(self, project_id: str, task_id: str) -> Task | None:
        """One task, or None (also for another project's task)."""
        row = self.conn.fetch_one(
            self.q["tasks.get"], {"id": task_id, "project_id": project_id}
        )
        return None if row is None else task_from_row(row)

    def get_many(self, project_id: str, task_ids: Sequence[str]) -> list[Task]:
        """Several tasks by id (missing ones are left out)."""
        rows = self.conn.fetch_all(
            self.q["tasks.get_many"],
            {"ids": self.db.array(task_ids), "project_id": project_id},
        )
        return [task_from_row(r) for r in rows]

    def list(
        self,
        project_id: str,
        *,
        code_name: str | None = None,
        status: str | None = None,
        schedule_id: str | None = None,
        parent_id: str | None = None,
        before_seq: int | None = None,
        from_time: float | None = None,
        to_time: float | None = None,
        limit: int = 30,
    ) -> list[tuple[int, Task]]:
        """Newest first, with each task's seq for cursor paging."""
        rows = self.conn.fetch_all(
            self.q["tasks.list"],
            {
                "project_id": project_id,
                "code_name": code_name,
                "status": status,
                "schedule_id": schedule_id,
                "parent_id": parent_id,
                "before": before_seq,
                "from_time": from_time,
                "to_time": to_time,
                "limit": limit,
            },
        )
        return [(int(r["seq"]), task_from_row(r)) for r in rows]

    def claim(self, **args: Any) -> builtins.list[Task]:
        """Lease up to `limit` due tasks (see `claim_rows`), decoded."""
        return self.claim_rows(**args).tasks()

    def claim_rows(
        self,
        *,
        runner_id: str,
        token: str,
        cluster: str,
        project_id: str,
        codes: Sequence[str],
        packages: bool,
        limit: int,
        lease_seconds: float,
        now: float | None = None,
    ) -> ClaimedRows:
        """Lease up to `limit` due tasks, honouring per-code concurrency caps and pauses.

        The rows come back undecoded: the caller turns them into Tasks once the
        transaction has committed, outside the write lock.
        """
        params: dict[str, Any] = {
            "runner_id": runner_id,
            "token": token,
            "cluster": cluster,
            "project_id": project_id,
            "codes": self.db.array(codes),
            "packages": packages,
            "lease_seconds": lease_seconds,
            "now": now,
        }
        claimed = ClaimedRows()
        self.admit(limit=ADMIT_PER_CLAIM)
        for capped in self.conn.fetch_all(self.q["tasks.capped_codes"], params):
            claimed.capped = True
            room = limit - claimed.count
            if room <= 0:
                break
            key = {"project_id": capped["project_id"], "code_name": capped["name"]}
            self.conn.fetch_one(self.q["tasks.lock_code"], key)
            free = room
            if capped["max_concurrency"] is not None:
                running = self.conn.fetch_one(self.q["tasks.count_running"], key)
                free = min(
                    free,
                    int(capped["max_concurrency"])
                    - int(running["n"] if running else 0),
                )
            if capped["rate_limit"] is None:
                if free > 0:
                    self._lease(
                        "tasks.claim_code", {**params, **key, "limit": free}, claimed
                    )
            elif free > 0:
                self._lease_rate_limited({**params, **key}, free, claimed)
        room = limit - claimed.count
        if room > 0:
            self._lease("tasks.claim", {**params, "limit": room}, claimed)
        return claimed

    def claim_now(
        self, *, codes: Sequence[str], now: float | None = None, **args: Any
    ) -> ClaimedRows:
        """PostgreSQL only: `claim_rows` (same arguments) without codes that have a
        concurrency cap, as one statement that commits itself without waiting for
        the disk (run it with `single_statement=True`). `capped` on the result says
        whether capped codes have due work, left for `claim_rows` in a transaction
        of its own.
        """
        params = {**args, "codes": self.db.array(codes), "now": now}
        row = self.conn.fetch_one(self.q["tasks.claim_now"], params)
        claimed = ClaimedRows()
        if row is not None:
            claimed.add(row["tasks"], len(row["tasks"]))
            claimed.capped = bool(row["capped"])
        return claimed

    def _lease_rate_limited(
        self, params: dict[str, Any], free: int, into: ClaimedRows
    ) -> None:
        """Lease up to `free` due tasks of one rate-limited code, one token each,
        under its claim lock (domain/rate.py); note in `into` when a token is next
        due if the bucket ran dry."""
        row = self.conn.fetch_one(self.q["tasks.rate_bucket"], params)
        if row is None or row["rate_limit"] is None:  # the limit was lifted meanwhile
            self._lease("tasks.claim_code", {**params, "limit": free}, into)
            return
        rate, now = float(row["rate_limit"]), float(row["now"])
        tokens = rate_bucket.available(rate, row["rate_tokens"], row["rate_at"], now)
        take = min(free, rate_bucket.whole_tokens(tokens))
        before = into.count
        if take > 0:
            # Stamped with the time the bucket was judged by (SQLite reads its clock
            # anew in each statement): the starts recorded keep to the limit exactly.
            self._lease("tasks.claim_code", {**params, "now": now, "limit": take}, into)
        started = into.count - before
        left = tokens - started
        if started:
            # A clock stepped back must not let the next claim refill twice.
            at = max(now, float(row["rate_at"] or now))
            self.conn.execute(
                self.q["tasks.rate_spend"], {**params, "tokens": left, "at": at}
            )
        if started < free:  # possibly held back by the bucket
            into.note_token_due(rate_bucket.wait_for_token(rate, left))

    def _lease(self, query: str, params: dict[str, Any], into: ClaimedRows) -> None:
        """Run one claim query: PostgreSQL leases and returns rows in one statement;
        SQLite picks, leases and reads back in three, each giving a single row
        (see the comment on its `tasks.claim`)."""
        if self.db.dialect != "sqlite":
            rows = self.conn.fetch_all(self.q[query], params)
            into.add(rows, len(rows))
            return
        picked = self.conn.fetch_one(self.q[query], params)
        seqs = picked["seqs"] if picked is not None else "[]"
        if seqs == "[]":
            return
        leased = {**params, "seqs": seqs}
        count = self.conn.execute(self.q["tasks.claim_mark"], leased)
        read = self.conn.fetch_one(self.q["tasks.claim_read"], leased)
        if read is not None:
            into.add(read["tasks"], count)

    def finish_many(
        self, outcomes: Sequence[Outcome] | OutcomeBatch, *, now: float | None = None
    ) -> int:
        """Record outcomes whose lease still holds; stale ones change nothing.

        Returns how many were recorded. An attempt followed by a retry is copied
        to task_attempts; the attempt that ends the task stays in the task row
        (`attempts()` reads both). Output known at the end goes after any
        streamed chunks. Every statement takes its batch as one JSON parameter
        and returns no rows, so the whole write is a handful of steps; callers
        that hold a write lock encode the batch first (`OutcomeBatch.of`).
        """
        batch = (
            outcomes
            if isinstance(outcomes, OutcomeBatch)
            else OutcomeBatch.of(outcomes)
        )
        if batch.attempts is not None:
            self.conn.execute(
                self.q["tasks.finish_attempts"], {"batch": batch.attempts, "now": now}
            )
        if batch.logs is not None:
            self.conn.execute(
                self.q["tasks.finish_logs"], {"batch": batch.logs, "chunk": LAST_CHUNK}
            )
        applied = self.conn.execute(
            self.q["tasks.finish"], {"batch": batch.finish, "now": now}
        )
        if batch.attempts is not None and applied:
            self.conn.notify("tasks")
        return applied

    def release(
        self, handed_back: Sequence[tuple[str, str, bool]], *, now: float | None = None
    ) -> int:
        """Give (task id, lease token, started) back to the queue; how many were."""
        count = 0
        for task_id, token, started in handed_back:
            row = self.conn.fetch_one(
                self.q["tasks.release"],
                {"id": task_id, "lease_token": token, "started": started, "now": now},
            )
            if row is None:
                continue
            count += 1
            if started:
                self.conn.execute(
                    self.q["tasks.insert_attempt"],
                    {
                        "task_id": task_id,
                        "attempt": row["attempt"],
                        "runner_id": row["runner_id"],
                        "start_time": row["start_time"],
                        "end_time": row["end_time"],
                        "status": "interrupted",
                        "error": "runner shut down before the task finished",
                    },
                )
        if count:
            self.conn.notify("tasks")
        return count

    def attempts(self, task_id: str) -> builtins.list[Attempt]:
        """Every ended attempt, oldest first."""
        rows = self.conn.fetch_all(self.q["tasks.attempts"], {"task_id": task_id})
        return [
            Attempt(
                task_id=r["task_id"],
                attempt=r["attempt"],
                runner_id=r["runner_id"],
                start_time=r["start_time"],
                end_time=r["end_time"],
                status=r["status"],
                error=r["error"],
            )
            for r in rows
        ]

    def heartbeat(
        self,
        *,
        runner_id: str,
        task_ids: Sequence[str],
        lease_seconds: float,
        now: float | None = None,
    ) -> builtins.list[tuple[str, str, bool]]:
        """Extend the leases this runner holds among `task_ids`.

        Returns (task id, lease token, cancel requested) for each still held.
        """
        rows = self.conn.fetch_all(
            self.q["tasks.heartbeat"],
            {
                "runner_id": runner_id,
                "ids": self.db.array(task_ids),
                "lease_seconds": lease_seconds,
                "now": now,
            },
        )
        return [(r["id"], r["lease_token"], bool(r["cancel_requested"])) for r in rows]

    def cancel(
        self, project_id: str, task_id: str, *, now: float | None = None
    ) -> bool:
        """Cancel a queued task at once, or ask a running one's runner to stop it.

        Returns False when the task is already final (cancelling is idempotent).
        """
        key = {"id": task_id, "project_id": project_id, "now": now}
        self.admit()
        if self.conn.execute(self.q["tasks.cancel_queued"], key):
            return True
        if self.conn.execute(self.q["tasks.request_cancel"], key):
            self.conn.notify("cancel")
            return True
        return False

    def rescue_expired(
        self, *, max_lost: int, limit: int, now: float | None = None
    ) -> builtins.list[Finished]:
        """Requeue (or kill) tasks whose lease ran out; records each lost attempt."""
        rows = self.conn.fetch_all(
            self.q["tasks.rescue_expired"],
            {"max_lost": max_lost, "limit": limit, "now": now},
        )
        if rows:
            self.conn.execute_many(
                self.q["tasks.insert_attempt"],
                [
                    {
                        "task_id": r["id"],
                        "attempt": r["attempt"],
                        "runner_id": r["runner_id"],
                        "start_time": r["start_time"],
                        "end_time": r["end_time"],
                        "status": "cancelled" if r["status"] == "cancelled" else "lost",
                        "error": r["error"],
                    }
                    for r in rows
                ],
            )
            self.conn.notify("tasks")
        return [
            Finished(
                r["id"], r["project_id"], r["attempt"], r["status"], r["parent_id"]
            )
            for r in rows
        ]

    def set_progress(
        self, task_id: str, lease_token: str, progress: int, message: str | None
    ) -> bool:
        """Progress of a running attempt; False when the lease no longer holds."""
        return bool(
            self.conn.execute(
                self.q["tasks.set_progress"],
                {
                    "id": task_id,
                    "lease_token": lease_token,
                    "progress": progress,
                    "message": message,
                },
            )
        )

    def report_progress(
        self, project_id: str, task_id: str, progress: int, message: str | None
    ) -> bool:
        """Progress reported by a task over the API (it holds no lease token)."""
        return bool(
            self.conn.execute(
                self.q["tasks.set_progress_any"],
                {
                    "id": task_id,
                    "project_id": project_id,
                    "progress": progress,
                    "message": message,
                },
            )
        )

    def append_log(self, task_id: str, attempt: int, chunk: int, data: str) -> None:
        """Store one chunk of a running attempt's output."""
        self.conn.execute(
            self.q["tasks.append_log"],
            {"task_id": task_id, "attempt": attempt, "chunk": chunk, "data": data},
        )

    def log(
        self, task_id: str, *, from_chunk: int = 0
    ) -> builtins.list[tuple[int, str]]:
        """(chunk, text) of the newest attempt's output, from a chunk on."""
        rows = self.conn.fetch_all(
            self.q["tasks.log_chunks"], {"task_id": task_id, "from_chunk": from_chunk}
        )
        return [(int(r["chunk"]), r["data"]) for r in rows]

    def count_by_status(self, project_id: str) -> builtins.list[tuple[str, str, int]]:
        """(code name, status, count) for a project."""
        rows = self.conn.fetch_all(
            self.q["tasks.count_by_status"], {"project_id": project_id}
        )
        return [(r["code_name"], r["status"], int(r["n"])) for r in rows]

    def depth(self) -> builtins.list[tuple[str, str, str, int]]:
        """(project, code name, queued|running, count) across every project."""
        rows = self.conn.fetch_all(self.q["tasks.depth"])
        return [
            (r["project_id"], r["code_name"], r["status"], int(r["n"])) for r in rows
        ]

    def prune(self, *, before: float, limit: int) -> int:
        """Delete finished tasks that ended before `before`; how many went."""
        rows = self.conn.fetch_all(
            self.q["tasks.prune_candidates"], {"before": before, "limit": limit}
        )
        ids = self.db.array([r["id"] for r in rows])
        if rows:
            for name in (
                "tasks.delete_attempts",
                "tasks.delete_logs",
                "tasks.delete_many",
            ):
                self.conn.execute(self.q[name], {"ids": ids})
        return len(rows)

    def children_summary(self, parent_id: str) -> dict[str, int]:
        """Status counts of a task's children."""
        rows = self.conn.fetch_all(
            self.q["tasks.children_summary"], {"parent_id": parent_id}
        )
        return {r["status"]: int(r["n"]) for r in rows}


class CodeStore(_Store):
    """Codes: Python task definitions and uploaded packages."""

    def upsert_python(
        self,
        *,
        project_id: str,
        name: str,
        options: Mapping[str, Any],
        now: float | None = None,
    ) -> bool:
        """Register a Python task; False if a package already has that name."""
        from workhorse.domain.ids import new_id

        row = self.conn.fetch_one(
            self.q["codes.upsert_python"],
            {
                "id": new_id(),
                "project_id": project_id,
                "name": name,
                "max_concurrency": options.get("max_concurrency"),
                "retries": options.get("retries", 0),
                "retries_delay": options.get("retries_delay", 0),
                "backoff": bool(options.get("backoff", False)),
                "priority": options.get("priority", 0),
                "timeout": options.get("timeout", 3600),
                "options": '{"unique":true}' if options.get("unique") else "{}",
                "rate_limit": options.get("rate_limit"),
                "now": now,
            },
        )
        return row is not None

    def get(self, project_id: str, name: str) -> dict[str, Any] | None:
        """A code's row, or None."""
        row = self.conn.fetch_one(
            self.q["codes.get"], {"project_id": project_id, "name": name}
        )
        return None if row is None else _code_dict(row)

    def get_by_id(self, project_id: str, code_id: str) -> dict[str, Any] | None:
        """A code's row by id, or None."""
        row = self.conn.fetch_one(
            self.q["codes.get_by_id"], {"project_id": project_id, "id": code_id}
        )
        return None if row is None else _code_dict(row)

    def list(
        self, project_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Codes of a project by name."""
        rows = self.conn.fetch_all(
            self.q["codes.list"],
            {"project_id": project_id, "limit": limit, "offset": offset},
        )
        return [_code_dict(r) for r in rows]

    def upsert_package(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """Create or bump a package code; None when the name belongs to a Python task."""
        row = self.conn.fetch_one(self.q["codes.upsert_package"], params)
        return None if row is None else _code_dict(row)

    def insert_revision(self, params: Mapping[str, Any]) -> None:
        """Store a revision's archive and metadata."""
        self.conn.execute(self.q["codes.insert_revision"], params)

    def get_revision(
        self, project_id: str, code_name: str, revision: int
    ) -> dict[str, Any] | None:
        """One revision including its archive."""
        row = self.conn.fetch_one(
            self.q["codes.get_revision"],
            {"project_id": project_id, "code_name": code_name, "revision": revision},
        )
        return None if row is None else dict(row)

    def list_revisions(
        self, project_id: str, code_name: str, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[dict[str, Any]]:
        """Revisions, newest first, without archives."""
        rows = self.conn.fetch_all(
            self.q["codes.list_revisions"],
            {
                "project_id": project_id,
                "code_name": code_name,
                "limit": limit,
                "offset": offset,
            },
        )
        return [dict(r) for r in rows]

    def set_paused(self, project_id: str, name: str, paused: bool) -> bool:
        """Pause or resume; False if no such code."""
        changed = self.conn.execute(
            self.q["codes.set_paused"],
            {"project_id": project_id, "name": name, "paused": paused},
        )
        if changed and not paused:
            self.conn.notify("tasks")
        return bool(changed)

    def delete(self, project_id: str, name: str) -> bool:
        """Remove a code and its revisions; False if no such code."""
        key = {"project_id": project_id, "name": name}
        self.conn.execute(self.q["codes.delete_revisions"], key)
        return bool(self.conn.execute(self.q["codes.delete"], key))


def _code_dict(row: Row) -> dict[str, Any]:
    data = dict(row)
    data["paused"] = bool(data["paused"])
    data["backoff"] = bool(data["backoff"])
    data["options"] = json.loads(data.get("options") or "{}")
    return data


class RunnerStore(_Store):
    """Runners: presence and heartbeats."""

    def upsert(self, params: Mapping[str, Any]) -> None:
        """Announce a runner."""
        self.conn.execute(self.q["runners.upsert"], params)

    def heartbeat(
        self, runner_id: str, *, running: int, status: str, now: float | None = None
    ) -> bool:
        """Refresh a runner; False if it had been forgotten."""
        return bool(
            self.conn.execute(
                self.q["runners.heartbeat"],
                {"id": runner_id, "running": running, "status": status, "now": now},
            )
        )

    def delete(self, runner_id: str) -> None:
        """Forget a runner that stopped."""
        self.conn.execute(self.q["runners.delete"], {"id": runner_id})

    def list(self, *, now: float | None = None) -> list[dict[str, Any]]:
        """Known runners with `age` (seconds since heartbeat)."""
        rows = self.conn.fetch_all(self.q["runners.list"], {"now": now})
        return [{**dict(r), "codes": json.loads(r["codes"])} for r in rows]

    def prune(self, *, before: float) -> int:
        """Forget runners silent since `before`."""
        return self.conn.execute(self.q["runners.prune"], {"before": before})


class LeaderStore(_Store):
    """Leadership leases."""

    def acquire(
        self, name: str, holder: str, *, ttl: float, now: float | None = None
    ) -> bool:
        """Take or renew; True when `holder` leads."""
        row = self.conn.fetch_one(
            self.q["leaders.acquire"],
            {"name": name, "holder": holder, "ttl": ttl, "now": now},
        )
        return row is not None and row["holder"] == holder

    def resign(self, name: str, holder: str) -> None:
        """Step down."""
        self.conn.execute(self.q["leaders.resign"], {"name": name, "holder": holder})


class IntakeWaiting(Exception):
    """Work that cannot admit SQLite's message intake itself (a read, or one
    autocommitted statement) met single posts waiting there (see MessageStore)."""


def _corrupt(exc: BaseException) -> StorageCorrupt:
    log.error(
        "the database reports damaged data: %s; run `workhorse check`",
        exc,
        extra={"event": "storage_corrupt"},
    )
    return StorageCorrupt(
        f"the database reports damaged data ({exc}); nothing was changed. "
        "Run `workhorse check`, and restore from a backup if it finds damage."
    )


class Transaction:
    """The stores of one open transaction.

    `write`: whether it may write; `single`: whether it is one autocommitted
    statement; `admitted`: whether the message intake was admitted after the work
    last raised IntakeWaiting.
    """

    def __init__(
        self,
        conn: Connection,
        db: Database,
        *,
        retried: bool = False,
        write: bool = True,
        single: bool = False,
        admitted: bool = False,
    ) -> None:
        self.conn = conn
        self._db = db
        self.retried = retried
        self.write = write
        self.single = single
        self.admitted = admitted

    @cached_property
    def tasks(self) -> TaskStore:
        """Task store."""
        return TaskStore(self.conn, self._db, retried=self.retried)

    @cached_property
    def codes(self) -> CodeStore:
        """Code store."""
        return CodeStore(self.conn, self._db)

    @cached_property
    def runners(self) -> RunnerStore:
        """Runner store."""
        return RunnerStore(self.conn, self._db)

    @cached_property
    def leaders(self) -> LeaderStore:
        """Leader store."""
        return LeaderStore(self.conn, self._db)

    @cached_property
    def messages(self) -> MessageStore:
        """Message-queue store."""
        from workhorse.storage.messages import MessageStore

        return MessageStore(
            self.conn,
            self._db,
            retried=self.retried,
            can_admit=self.write and not self.single,
            admitted=self.admitted,
        )

    @cached_property
    def schedules(self) -> ScheduleStore:
        """Schedule store."""
        from workhorse.storage.schedules import ScheduleStore

        return ScheduleStore(self.conn, self._db)

    @cached_property
    def fanins(self) -> FanInStore:
        """Fan-in records."""
        from workhorse.storage.fanins import FanInStore

        return FanInStore(self.conn, self._db)

    @cached_property
    def projects(self) -> ProjectStore:
        """Projects and tokens."""
        from workhorse.storage.projects import ProjectStore

        return ProjectStore(self.conn, self._db)


class Storage:
    """The engine's handle on the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._shared = SharedCommits(self)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgres`."""
        return self.db.dialect

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """One transaction; commits on success, rolls back on error."""
        with self.db.transaction(write=write) as conn:
            yield Transaction(conn, self.db, write=write)

    def run(
        self,
        fn: Callable[[Transaction], T],
        *,
        write: bool = True,
        retry_for: float | None = None,
        single_statement: bool = False,
        durable: bool = True,
    ) -> T:
        """`fn(tx)` in a transaction, retried while the database is unavailable.

        Args:
            fn: the work; it may run more than once, so it must not have side
                effects outside the transaction. A repeat sees `tx.retried`: the
                try before it may have committed (its connection was lost).
            single_statement: `fn` runs exactly one statement, which is atomic by
                itself; PostgreSQL then skips BEGIN/COMMIT (one round trip).
            retry_for: give up after this many seconds (None: the producer budget
                from settings; `float('inf')`: never).
            durable: False when losing the commit to a crash would leave nothing
                acknowledged behind (see `Database.transaction`).

        Raises:
            StorageUnavailable: the database stayed unavailable for `retry_for`.
        """
        budget = (
            self.settings.producer_retry_seconds if retry_for is None else retry_for
        )
        deadline = time.monotonic() + budget
        delay = 0.01
        retried = admitted = False
        while True:
            try:
                with self.db.transaction(
                    write=write, single=single_statement, durable=durable
                ) as conn:
                    return fn(
                        Transaction(
                            conn,
                            self.db,
                            retried=retried,
                            write=write,
                            single=single_statement,
                            admitted=admitted,
                        )
                    )
            except IntakeWaiting:
                # A read or a single statement that must see single posts still in
                # the intake: admit them, then run again (once: later posts need
                # not be seen).
                self.run(lambda tx: tx.messages.admit(), retry_for=retry_for)
                admitted = True
            except Exception as exc:
                if not self.db.is_transient(exc):
                    if self.db.is_corrupt(exc):
                        raise _corrupt(exc) from exc
                    raise
                retried = True
                if time.monotonic() + delay > deadline:
                    raise StorageUnavailable(f"database unavailable: {exc}") from exc
                log.warning(
                    "database unavailable, retrying in %.2fs: %s",
                    delay,
                    exc,
                    extra={"event": "storage_retry"},
                )
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def run_shared(
        self,
        fn: Callable[[Transaction], T],
        *,
        single_statement: bool = False,
        one_row: bool = False,
    ) -> T:
        """`fn(tx)` committed durably, sharing the commit with writes that other
        threads of this process bring meanwhile (see `shared_commits`).

        For small hot-path writes (a task, a message post) that raise, if at all,
        before they change anything. Raises what `fn` raised, or StorageUnavailable.
        """
        return self._shared.run(fn, single_statement=single_statement, one_row=one_row)

    def listen(self, keys: Sequence[str], *, urgent: bool = False) -> Listener:
        """Follow change announcements (see `storage.notify`); urgent ones are polled fastest."""
        return self.db.listen(keys, urgent=urgent)

    def migrate(self) -> list[int]:
        """Apply pending migrations; returns the versions applied now."""
        from workhorse.storage.migrate import apply_pending

        return apply_pending(self.db)

    def close(self) -> None:
        """Release connections and threads."""
        self.db.close()
