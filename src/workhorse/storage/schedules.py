"""ScheduleStore: definitions, the scheduler's claim and fenced advance, fires."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from workhorse.domain.schedule import CatchUp, Overlap, ScheduleInfo, ScheduleStatus
from workhorse.storage.base import Row
from workhorse.storage.stores import _Store

_FIELDS = tuple(ScheduleInfo.__dataclass_fields__)
# Definition columns written by `insert` and `redefine`.
DEFINITION_FIELDS = (
    "code_name",
    "name",
    "payload",
    "label",
    "priority",
    "timeout",
    "task_delay",
    "cluster",
    "max_concurrency",
    "start_at",
    "end_at",
    "run_every",
    "cron",
    "timezone",
    "run_times",
    "overlap",
    "catch_up",
    "fingerprint",
)
# A schedule change wakes the scheduler so a new due time is not waited for.
NOTIFY_KEY = "schedules"


def schedule_from_row(row: Row) -> ScheduleInfo:
    """Build a ScheduleInfo from a row of either dialect."""
    data = {name: row[name] for name in _FIELDS}
    data["status"] = ScheduleStatus(data["status"])
    data["overlap"] = Overlap(data["overlap"])
    data["catch_up"] = CatchUp(data["catch_up"])
    return ScheduleInfo(**data)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due schedule locked by the scheduler, with the database time of the claim."""

    schedule: ScheduleInfo
    db_now: float


@dataclass(frozen=True, slots=True)
class Fire:
    """How one due time of a schedule was decided."""

    schedule_id: str
    due_at: float
    task_id: str | None
    outcome: str
    fired_at: float


class ScheduleStore(_Store):
    """Schedules: define, claim due ones, advance (fenced by due time), fires."""

    def insert(
        self, schedule: ScheduleInfo, *, now: float | None = None
    ) -> ScheduleInfo | None:
        """Store a new schedule; None if its (project, sync key) already exists."""
        params: dict[str, Any] = {
            name: getattr(schedule, name) for name in DEFINITION_FIELDS
        }
        params.update(
            id=schedule.id,
            project_id=schedule.project_id,
            status=schedule.status.value,
            next_start=schedule.next_start,
            sync_key=schedule.sync_key,
            overlap=schedule.overlap.value,
            catch_up=schedule.catch_up.value,
            now=now,
        )
        row = self.conn.fetch_one(self.q["schedules.insert"], params)
        if row is None:
            return None
        self.conn.notify(NOTIFY_KEY)
        return schedule_from_row(row)

    def get(self, project_id: str, schedule_id: str) -> ScheduleInfo | None:
        """One schedule, or None (also for another project's)."""
        row = self.conn.fetch_one(
            self.q["schedules.get"], {"id": schedule_id, "project_id": project_id}
        )
        return None if row is None else schedule_from_row(row)

    def get_by_key(self, project_id: str, sync_key: str) -> ScheduleInfo | None:
        """The schedule with this sync key, or None."""
        row = self.conn.fetch_one(
            self.q["schedules.get_by_key"],
            {"project_id": project_id, "sync_key": sync_key},
        )
        return None if row is None else schedule_from_row(row)

    def list(
        self,
        project_id: str,
        *,
        status: str | None = None,
        code_name: str | None = None,
        limit: int = 30,
        offset: int = 0,
    ) -> builtins.list[ScheduleInfo]:
        """Newest first."""
        rows = self.conn.fetch_all(
            self.q["schedules.list"],
            {
                "project_id": project_id,
                "status": status,
                "code_name": code_name,
                "limit": limit,
                "offset": offset,
            },
        )
        return [schedule_from_row(r) for r in rows]

    def claim_due(
        self, *, limit: int, now: float | None = None
    ) -> builtins.list[Claimed]:
        """Lock up to `limit` due schedules for this transaction, earliest first."""
        rows = self.conn.fetch_all(
            self.q["schedules.claim_due"], {"limit": limit, "now": now}
        )
        return [Claimed(schedule_from_row(r), float(r["db_now"])) for r in rows]

    def next_due(self, *, now: float | None = None) -> tuple[float | None, float]:
        """(earliest next due time of any live schedule or None, database time)."""
        row = self.conn.fetch_one(self.q["schedules.next_due"], {"now": now})
        assert row is not None  # noqa: S101 - an aggregate always returns a row
        nxt = row["next_start"]
        return (None if nxt is None else float(nxt)), float(row["db_now"])

    def count_active(self, schedule_id: str, *, limit: int) -> int:
        """Tasks of the schedule still queued or running, counted up to `limit`."""
        row = self.conn.fetch_one(
            self.q["schedules.count_active"], {"id": schedule_id, "limit": limit}
        )
        return 0 if row is None else int(row["n"])

    def advance(
        self,
        schedule_id: str,
        *,
        pending: float,
        next_start: float | None,
        status: ScheduleStatus,
        ran: int,
        skipped: int,
        errors: int,
        msg: str | None,
        now_db: float,
    ) -> bool:
        """Move a schedule past its due time `pending`; False if that was already done.

        The statement is conditional on the schedule still being live and still
        waiting for `pending`, so a second scheduler that claimed the same due
        time (or a cancel that came first) makes it a no-op.
        """
        return bool(
            self.conn.execute(
                self.q["schedules.advance"],
                {
                    "id": schedule_id,
                    "pending": pending,
                    "next_start": next_start,
                    "status": status.value,
                    "ran": ran,
                    "skipped": skipped,
                    "errors": errors,
                    "msg": msg,
                    "now_db": now_db,
                },
            )
        )

    def insert_fire(
        self,
        schedule_id: str,
        due_at: float,
        *,
        task_id: str | None,
        outcome: str,
        now_db: float,
    ) -> bool:
        """Record how a due time was decided; False if it already was."""
        return bool(
            self.conn.execute(
                self.q["schedules.insert_fire"],
                {
                    "schedule_id": schedule_id,
                    "due_at": due_at,
                    "task_id": task_id,
                    "outcome": outcome,
                    "now_db": now_db,
                },
            )
        )

    def fires(self, schedule_id: str, *, limit: int = 30) -> builtins.list[Fire]:
        """The latest fire records, newest due time first."""
        rows = self.conn.fetch_all(
            self.q["schedules.fires"], {"schedule_id": schedule_id, "limit": limit}
        )
        return [
            Fire(
                r["schedule_id"],
                float(r["due_at"]),
                r["task_id"],
                r["outcome"],
                r["fired_at"],
            )
            for r in rows
        ]

    def prune_fires(
        self, *, retention: float, limit: int, now: float | None = None
    ) -> int:
        """Forget up to `limit` fire records older than `retention` seconds."""
        return self.conn.execute(
            self.q["schedules.prune_fires"],
            {"retention": retention, "limit": limit, "now": now},
        )

    def pause(
        self, project_id: str, schedule_id: str, *, now: float | None = None
    ) -> bool:
        """Pause a live schedule; False if it was not live."""
        return bool(
            self.conn.execute(
                self.q["schedules.pause"],
                {"id": schedule_id, "project_id": project_id, "now": now},
            )
        )

    def resume(
        self,
        project_id: str,
        schedule_id: str,
        *,
        version: int,
        status: ScheduleStatus,
        next_start: float | None,
        now: float | None = None,
    ) -> bool:
        """Make a paused schedule live (or complete); False if it changed meanwhile."""
        changed = self.conn.execute(
            self.q["schedules.resume"],
            {
                "id": schedule_id,
                "project_id": project_id,
                "version": version,
                "status": status.value,
                "next_start": next_start,
                "now": now,
            },
        )
        if changed:
            self.conn.notify(NOTIFY_KEY)
        return bool(changed)

    def cancel(
        self, project_id: str, schedule_id: str, *, now: float | None = None
    ) -> bool:
        """Cancel a live or paused schedule; False if it had already ended."""
        return bool(
            self.conn.execute(
                self.q["schedules.cancel"],
                {"id": schedule_id, "project_id": project_id, "now": now},
            )
        )

    def redefine(
        self, schedule: ScheduleInfo, *, version: int, now: float | None = None
    ) -> ScheduleInfo | None:
        """Replace definition, status and next due time; None if changed meanwhile."""
        params: dict[str, Any] = {
            name: getattr(schedule, name) for name in DEFINITION_FIELDS
        }
        params.update(
            id=schedule.id,
            project_id=schedule.project_id,
            status=schedule.status.value,
            next_start=schedule.next_start,
            overlap=schedule.overlap.value,
            catch_up=schedule.catch_up.value,
            version=version,
            now=now,
        )
        row = self.conn.fetch_one(self.q["schedules.redefine"], params)
        if row is None:
            return None
        self.conn.notify(NOTIFY_KEY)
        return schedule_from_row(row)
