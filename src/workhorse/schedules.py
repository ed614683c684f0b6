"""Schedules for the SDK, the CLI and the HTTP API: one copy of the logic.

    schedules = ScheduleClient(client)
    info = schedules.create("report", "{}", cron="0 6 * * *", timezone="Europe/Berlin")
    schedules.pause(info.id); schedules.resume(info.id); schedules.cancel(info.id)

Nothing is stored when any input is bad: every check runs before the insert,
in the same transaction. The HTTP layer builds its client with
`min_run_every=IRON_MIN_RUN_EVERY` (60 s); the core and CLI allow shorter periods.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from workhorse.client import Client
from workhorse.domain.ids import new_id
from workhorse.domain.schedule import (
    IRON_MIN_RUN_EVERY,
    MIN_RUN_EVERY,
    CatchUp,
    Overlap,
    ScheduleInfo,
    ScheduleStatus,
    Timing,
    check_run_times,
    first_run_at,
    resume_at,
    status_after_change,
    to_epoch,
    validate_timing,
)
from workhorse.domain.task import MAX_LABEL_LENGTH, Task, TaskOptions, python_payload
from workhorse.errors import Conflict, InvalidInput, NotFound
from workhorse.storage.schedules import Fire
from workhorse.storage.stores import Transaction

__all__ = [
    "IRON_MIN_RUN_EVERY",
    "Schedule",
    "ScheduleClient",
    "ScheduleInfo",
    "ScheduleStatus",
]

TimeValue = datetime | str | float | int | None
# A definition change that loses a race with the scheduler is retried this often.
CHANGE_ATTEMPTS = 5
MAX_LIST = 1000


@dataclass(frozen=True)
class Schedule:
    """When and how to run a code: a definition, before it is stored.

    Give `run_every` (seconds) or `cron` (five fields, read in `timezone`), or
    neither to run once at `start_at`. Times are aware datetimes, ISO 8601
    strings with an offset, or epoch seconds; naive times are refused.

    Attributes:
        start_at: first possible due time (default: now).
        end_at: due times at or after this never run.
        run_times: stop after this many tasks (None or 0: no limit).
        overlap: `allow`, or `skip` a due time while an earlier task of the
            schedule is still queued or running.
        catch_up: after an outage, `once` queues one task for the missed due
            times (never a burst); `skip` queues none.
        max_concurrency: skip a due time while this many of its tasks are active.
        args, kwargs: arguments of a Python task defined with `@app.task(schedule=...)`.
    """

    run_every: float | None = None
    cron: str | None = None
    timezone: str = "UTC"
    start_at: TimeValue = None
    end_at: TimeValue = None
    run_times: int | None = None
    priority: int | None = None
    timeout: int | None = None
    delay: float = 0.0
    label: str | None = None
    cluster: str = "default"
    name: str | None = None
    max_concurrency: int | None = None
    overlap: str = Overlap.ALLOW.value
    catch_up: str = CatchUp.ONCE.value
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Schedule | str | float | Mapping[str, Any]) -> Schedule:
        """A cron string, a number of seconds, a dict of fields, or a Schedule."""
        if isinstance(value, Schedule):
            return value
        if isinstance(value, str):
            return cls(cron=value)
        if isinstance(value, bool):
            raise InvalidInput(
                f"schedule must be a cron string, seconds or a Schedule, got {value!r}"
            )
        if isinstance(value, int | float):
            return cls(run_every=float(value))
        if isinstance(value, Mapping):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise InvalidInput(
                    f"unknown schedule fields: {', '.join(sorted(unknown))}"
                )
            return cls(**value)
        raise InvalidInput(
            f"schedule must be a cron string, seconds or a Schedule, got {value!r}"
        )

    def validate(self, *, min_run_every: float = MIN_RUN_EVERY) -> Schedule:
        """Check the timing and policies now (without a database); returns self.

        Raises:
            InvalidInput: the field at fault is named.
        """
        start = to_epoch(self.start_at, "start_at")
        validate_timing(
            Timing(
                start_at=time.time() if start is None else start,
                end_at=to_epoch(self.end_at, "end_at"),
                run_every=self.run_every,
                cron=self.cron,
                timezone=self.timezone,
            ),
            min_run_every=min_run_every,
        )
        check_run_times(self.run_times)
        _choice(Overlap, self.overlap, "overlap")
        _choice(CatchUp, self.catch_up, "catch_up")
        return self

    def python_payload(self) -> str:
        """The payload of a Python task called with `args` and `kwargs`."""
        return python_payload(list(self.args), dict(self.kwargs))

    def fingerprint(self, code_name: str, payload: str) -> str:
        """A digest of the definition, to tell whether code changed it."""
        data = {k: v for k, v in asdict(self).items() if k not in ("args", "kwargs")}
        data.update(code_name=code_name, payload=payload)
        text = json.dumps(data, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _choice(kind: type[Overlap] | type[CatchUp], value: str, name: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidInput(f"{name} must be one of {allowed}, got {value!r}") from None


class ScheduleClient:
    """Create, read and change the schedules of one project.

    Args:
        client: the task client (its project and storage are used).
        min_run_every: smallest `run_every` accepted, in seconds.
    """

    def __init__(self, client: Client, *, min_run_every: float = MIN_RUN_EVERY) -> None:
        self.client = client
        self.storage = client.storage
        self.project_id = client.project_id
        self.min_run_every = min_run_every

    # -- creating ---------------------------------------------------------------

    def create(self, code_name: str, payload: str = "", **fields: Any) -> ScheduleInfo:
        """Store a schedule of `code_name`; see `Schedule` for the fields.

        Raises:
            InvalidInput: a bad field (the message names it); nothing is stored.
            NotFound: no code of that name.
        """
        return self.define(code_name, payload, Schedule(**fields))

    def define(
        self,
        code_name: str,
        payload: str,
        schedule: Schedule,
        *,
        sync_key: str | None = None,
        fingerprint: str | None = None,
    ) -> ScheduleInfo:
        """Store a schedule from a definition; `sync_key` names a code-defined one."""
        schedule_id = new_id()

        def work(tx: Transaction) -> ScheduleInfo:
            now = tx.schedules.db_now()
            draft = self._draft(
                tx,
                schedule_id,
                code_name=code_name,
                payload=payload,
                schedule=schedule,
                now=now,
            )
            draft = replace(
                draft, sync_key=sync_key or schedule_id, fingerprint=fingerprint
            )
            stored = tx.schedules.insert(draft)
            if stored is None:  # another process stored the same code-defined schedule
                existing = tx.schedules.get_by_key(self.project_id, draft.sync_key)
                if existing is None:
                    raise Conflict(f"schedule {draft.sync_key!r} could not be stored")
                return existing
            return stored

        return self.storage.run(work)

    def _draft(
        self,
        tx: Transaction,
        schedule_id: str,
        *,
        code_name: str,
        payload: str,
        schedule: Schedule,
        now: float,
        start_default: float | None = None,
    ) -> ScheduleInfo:
        """Validate everything and build the row; raises before anything is written."""
        if not isinstance(payload, str):
            raise InvalidInput("payload must be a string (usually JSON)")
        start = to_epoch(schedule.start_at, "start_at")
        timing = validate_timing(
            Timing(
                start_at=start
                if start is not None
                else (now if start_default is None else start_default),
                end_at=to_epoch(schedule.end_at, "end_at"),
                run_every=schedule.run_every,
                cron=schedule.cron,
                timezone=schedule.timezone,
            ),
            min_run_every=self.min_run_every,
        )
        run_times = check_run_times(schedule.run_times)
        overlap = _choice(Overlap, schedule.overlap, "overlap")
        catch_up = _choice(CatchUp, schedule.catch_up, "catch_up")
        if schedule.max_concurrency is not None and (
            isinstance(schedule.max_concurrency, bool)
            or not isinstance(schedule.max_concurrency, int)
            or schedule.max_concurrency < 1
        ):
            raise InvalidInput("max_concurrency must be a whole number of at least 1")
        if schedule.name is not None and (
            not isinstance(schedule.name, str) or len(schedule.name) > MAX_LABEL_LENGTH
        ):
            raise InvalidInput(
                f"name must be a string of at most {MAX_LABEL_LENGTH} characters"
            )
        # The task each due time queues must be valid now, not fail at 3 a.m.
        self.client.build(
            tx,
            code_name,
            payload,
            TaskOptions(
                priority=schedule.priority,
                delay=schedule.delay,
                timeout=schedule.timeout,
                label=schedule.label,
                cluster=schedule.cluster,
                schedule_id=schedule_id,
            ),
        )
        next_start = first_run_at(timing)
        return ScheduleInfo(
            id=schedule_id,
            project_id=self.project_id,
            code_name=code_name,
            name=schedule.name,
            payload=payload,
            label=schedule.label,
            priority=schedule.priority,
            timeout=schedule.timeout,
            task_delay=float(schedule.delay),
            cluster=schedule.cluster,
            max_concurrency=schedule.max_concurrency,
            start_at=timing.start_at,
            end_at=timing.end_at,
            run_every=timing.run_every,
            cron=timing.cron,
            timezone=timing.timezone,
            run_times=run_times,
            overlap=overlap,
            catch_up=catch_up,
            status=ScheduleStatus.SCHEDULED,
            next_start=next_start,
            run_count=0,
            skip_count=0,
            error_count=0,
            last_run_time=None,
            msg=None,
            sync_key=schedule_id,
            fingerprint=None,
            version=0,
            created_at=now,
            updated_at=now,
        )

    # -- reading ----------------------------------------------------------------

    def get(self, schedule_id: str) -> ScheduleInfo:
        """One schedule of this project; NotFound otherwise."""
        found = self.storage.run(
            lambda tx: tx.schedules.get(self.project_id, schedule_id), write=False
        )
        if found is None:
            raise NotFound(f"schedule {schedule_id} not found")
        return found

    def list(
        self,
        *,
        status: str | None = None,
        code_name: str | None = None,
        limit: int = 30,
        offset: int = 0,
    ) -> builtins.list[ScheduleInfo]:
        """Schedules, newest first."""
        if status is not None:
            try:
                ScheduleStatus(status)
            except ValueError:
                allowed = ", ".join(s.value for s in ScheduleStatus)
                raise InvalidInput(
                    f"status must be one of {allowed}, got {status!r}"
                ) from None
        if not 1 <= limit <= MAX_LIST or offset < 0:
            raise InvalidInput(f"limit must be 1-{MAX_LIST} and offset at least 0")
        return self.storage.run(
            lambda tx: tx.schedules.list(
                self.project_id,
                status=status,
                code_name=code_name,
                limit=limit,
                offset=offset,
            ),
            write=False,
        )

    def tasks(self, schedule_id: str, *, limit: int = 30) -> builtins.list[Task]:
        """Tasks the schedule queued, newest first."""
        self.get(schedule_id)
        return [t for _, t in self.client.list(schedule_id=schedule_id, limit=limit)]

    def fires(self, schedule_id: str, *, limit: int = 30) -> builtins.list[Fire]:
        """How its latest due times were decided (queued, skipped, error)."""
        self.get(schedule_id)
        return self.storage.run(
            lambda tx: tx.schedules.fires(schedule_id, limit=limit), write=False
        )

    # -- changing ---------------------------------------------------------------

    def pause(self, schedule_id: str) -> ScheduleInfo:
        """Stop queueing until resumed; a paused schedule is left as it is.

        Raises:
            Conflict: the schedule is complete or cancelled.
        """
        self.storage.run(lambda tx: tx.schedules.pause(self.project_id, schedule_id))
        info = self.get(schedule_id)
        if info.status.is_final:
            raise Conflict(
                f"schedule {schedule_id} is {info.status}; it cannot be paused"
            )
        return info

    def resume(self, schedule_id: str) -> ScheduleInfo:
        """Queue again from the next due time; due times missed meanwhile are not run.

        Raises:
            Conflict: the schedule is complete or cancelled.
        """

        def work(tx: Transaction) -> ScheduleInfo | None:
            info = tx.schedules.get(self.project_id, schedule_id)
            if info is None:
                raise NotFound(f"schedule {schedule_id} not found")
            if info.status == ScheduleStatus.SCHEDULED:
                return info
            if info.status != ScheduleStatus.PAUSED:
                raise Conflict(
                    f"schedule {schedule_id} is {info.status}; it cannot be resumed"
                )
            next_start = resume_at(info.timing, tx.schedules.db_now())
            status = status_after_change(
                ScheduleStatus.SCHEDULED, next_start, info.run_times, info.run_count
            )
            ok = tx.schedules.resume(
                self.project_id,
                schedule_id,
                version=info.version,
                status=status,
                next_start=next_start if status == ScheduleStatus.SCHEDULED else None,
            )
            return tx.schedules.get(self.project_id, schedule_id) if ok else None

        return self._until_applied(work, schedule_id)

    def cancel(self, schedule_id: str) -> ScheduleInfo:
        """End the schedule now (idempotent); tasks it already queued stay."""
        self.storage.run(lambda tx: tx.schedules.cancel(self.project_id, schedule_id))
        return self.get(schedule_id)

    def update(self, schedule_id: str, **changes: Any) -> ScheduleInfo:
        """Change some fields (those of `Schedule`, plus `payload` and `code_name`).

        A change to the timing restarts it from the next due time after now; a
        complete schedule with runs left (say, a higher `run_times`) is live again.

        Raises:
            Conflict: the schedule is cancelled.
        """
        allowed = set(Schedule.__dataclass_fields__) - {"args", "kwargs"} | {
            "payload",
            "code_name",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(f"unknown schedule fields: {', '.join(sorted(unknown))}")

        def work(tx: Transaction) -> ScheduleInfo | None:
            info = tx.schedules.get(self.project_id, schedule_id)
            if info is None:
                raise NotFound(f"schedule {schedule_id} not found")
            if info.status == ScheduleStatus.CANCELLED:
                raise Conflict(f"schedule {schedule_id} is cancelled; create a new one")
            return self._redefine(tx, info, changes)

        return self._until_applied(work, schedule_id)

    def _redefine(
        self, tx: Transaction, info: ScheduleInfo, changes: Mapping[str, Any]
    ) -> ScheduleInfo | None:
        defined = _as_schedule(info)
        fields = {
            k: v
            for k, v in changes.items()
            if k not in ("payload", "code_name", "fingerprint")
        }
        wanted = replace(defined, **fields)
        code_name = changes.get("code_name", info.code_name)
        payload = changes.get("payload", info.payload)
        now = tx.schedules.db_now()
        draft = self._draft(
            tx,
            info.id,
            code_name=code_name,
            payload=payload,
            schedule=wanted,
            now=now,
            start_default=info.start_at,
        )
        timing_changed = draft.timing != info.timing
        if timing_changed or info.status.is_final:
            next_start = resume_at(draft.timing, now)
        else:
            next_start = info.next_start
        # A finished schedule whose new definition has runs left is live again.
        current = ScheduleStatus.SCHEDULED if info.status.is_final else info.status
        status = status_after_change(
            current, next_start, draft.run_times, info.run_count
        )
        draft = replace(
            draft,
            status=status,
            next_start=next_start if status == ScheduleStatus.SCHEDULED else None,
            fingerprint=changes.get("fingerprint", info.fingerprint),
        )
        return tx.schedules.redefine(draft, version=info.version)

    def _until_applied(self, work: Any, schedule_id: str) -> ScheduleInfo:
        for _ in range(CHANGE_ATTEMPTS):
            result: ScheduleInfo | None = self.storage.run(work)
            if result is not None:
                return result
        raise Conflict(f"schedule {schedule_id} kept changing; try again")

    # -- schedules defined in code ------------------------------------------------

    def sync_defined(
        self, definitions: Mapping[str, tuple[str, Schedule]]
    ) -> builtins.list[ScheduleInfo]:
        """Make code-defined schedules match their definitions (runners do at start).

        Args:
            definitions: sync key -> (code name, definition).

        An unchanged definition leaves the stored schedule alone (its counters,
        its next due time, and a pause or cancel by an operator). A changed one
        is redefined and made live again. Schedules whose definition disappeared
        from the code are left as they are: cancel them with the CLI.
        """
        synced = []
        for key, (code_name, schedule) in sorted(definitions.items()):
            payload = schedule.python_payload()
            fingerprint = schedule.fingerprint(code_name, payload)
            synced.append(
                self._sync_one(key, code_name, payload, schedule, fingerprint)
            )
        return synced

    def _sync_one(
        self,
        key: str,
        code_name: str,
        payload: str,
        schedule: Schedule,
        fingerprint: str,
    ) -> ScheduleInfo:
        existing = self.storage.run(
            lambda tx: tx.schedules.get_by_key(self.project_id, key), write=False
        )
        if existing is None:
            return self.define(
                code_name, payload, schedule, sync_key=key, fingerprint=fingerprint
            )
        if existing.fingerprint == fingerprint:
            return existing
        changes = {**asdict(schedule), "code_name": code_name, "payload": payload}
        changes.pop("args")
        changes.pop("kwargs")
        changes["fingerprint"] = fingerprint

        def work(tx: Transaction) -> ScheduleInfo | None:
            info = tx.schedules.get_by_key(self.project_id, key)
            if info is None:
                raise NotFound(f"schedule {key!r} vanished while being synced")
            if info.fingerprint == fingerprint:
                return info
            return self._redefine(tx, info, changes)

        return self._until_applied(work, key)


def _as_schedule(info: ScheduleInfo) -> Schedule:
    return Schedule(
        run_every=info.run_every,
        cron=info.cron,
        timezone=info.timezone,
        start_at=info.start_at,
        end_at=info.end_at,
        run_times=info.run_times,
        priority=info.priority,
        timeout=info.timeout,
        delay=info.task_delay,
        label=info.label,
        cluster=info.cluster,
        name=info.name,
        max_concurrency=info.max_concurrency,
        overlap=info.overlap.value,
        catch_up=info.catch_up.value,
    )
