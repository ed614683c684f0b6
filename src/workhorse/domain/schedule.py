"""Schedules: when a schedule is due, and what the scheduler does when it is.

Every rule here is a pure function of explicit inputs; times are epoch seconds.

Due times come from the definition alone (`start_at` plus multiples of
`run_every`, or the matches of `cron` in `timezone`), never from a process
clock, so every scheduler computes the same due times and the database clock
alone decides which of them have arrived.

Cron expressions name wall-clock times in the schedule's time zone:

* a wall time that does not exist (clocks jump forward) runs at the instant of
  the jump: `30 2 * * *` in Europe/Berlin runs at 03:00 CEST on that day;
* a wall time that happens twice (clocks fall back) runs once, at its first
  occurrence; for a fixed period across DST changes use `run_every` or UTC.

A schedule runs in the half-open window [start_at, end_at): a due time at or
after `end_at` never runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workhorse.errors import InvalidInput

# Iron's rule for schedules created over the HTTP API.
IRON_MIN_RUN_EVERY = 60.0
# The core and the CLI accept shorter periods; this is their default floor.
MIN_RUN_EVERY = 1.0
MAX_RUN_TIMES = 1_000_000_000
# How late a due time may be reached and still run under the `skip` catch-up policy
# (it must also be reached before the next due time).
MISFIRE_GRACE_SECONDS = 60.0
# Counting the due times a long outage skipped stops here (the count is a report,
# not a decision); the decision itself never iterates.
MAX_COUNTED_SKIPS = 10_000


class ScheduleStatus(StrEnum):
    """Where a schedule is in its life; `complete` and `cancelled` are final."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    COMPLETE = "complete"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True when the schedule will never queue a task again by itself."""
        return self in (ScheduleStatus.COMPLETE, ScheduleStatus.CANCELLED)


class Overlap(StrEnum):
    """What to do at a due time while an earlier task of the schedule is active."""

    ALLOW = "allow"
    SKIP = "skip"


class CatchUp(StrEnum):
    """What to do with due times missed while no scheduler ran.

    `once`: queue one task for the most recent missed due time (never a burst).
    `skip`: queue nothing for them; a due time runs only if it was reached before
    the next one came and at most MISFIRE_GRACE_SECONDS late.
    """

    ONCE = "once"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Timing:
    """When a schedule is due.

    With neither `run_every` nor `cron` the schedule runs once, at `start_at`.

    Attributes:
        start_at: first possible due time (epoch seconds).
        end_at: due times at or after this never run.
        run_every: seconds between due times, counted from `start_at`.
        cron: a five-field cron expression (or `@hourly`, `@daily`...).
        timezone: IANA zone in which `cron` is read.
    """

    start_at: float
    end_at: float | None = None
    run_every: float | None = None
    cron: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """A schedule as stored, with every field IronWorker's schedule object has.

    `run_count` counts queued tasks, `skip_count` due times passed over (overlap
    or missed during an outage), `error_count` due times at which no task could
    be queued (for example the code was deleted); `msg` is the last such error.
    """

    id: str
    project_id: str
    code_name: str
    name: str | None
    payload: str
    label: str | None
    priority: int | None
    timeout: int | None
    task_delay: float
    cluster: str
    max_concurrency: int | None
    start_at: float
    end_at: float | None
    run_every: float | None
    cron: str | None
    timezone: str
    run_times: int | None
    overlap: Overlap
    catch_up: CatchUp
    status: ScheduleStatus
    next_start: float | None
    run_count: int
    skip_count: int
    error_count: int
    last_run_time: float | None
    msg: str | None
    sync_key: str
    fingerprint: str | None
    version: int
    created_at: float
    updated_at: float

    @property
    def timing(self) -> Timing:
        """The part of the definition that decides due times."""
        return Timing(
            self.start_at, self.end_at, self.run_every, self.cron, self.timezone
        )


# -- validation ---------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; InvalidInput if unknown."""
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(("/", "."))
        or ".." in name
    ):
        raise InvalidInput(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
        ) from None


def check_cron(expression: str) -> str:
    """A usable cron expression, stripped; InvalidInput otherwise."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput("cron must be a non-empty string such as '*/5 * * * *'")
    text = " ".join(expression.split())
    if not text.startswith("@") and len(text.split(" ")) != 5:
        raise InvalidInput(
            f"invalid cron {expression!r}: "
            "give five fields (minute hour day month weekday)"
        )
    from croniter import CroniterError, croniter  # see _cron_walls

    try:
        croniter(text, datetime(2000, 1, 1))  # noqa: DTZ001 - cron fields are wall-clock
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidInput(f"invalid cron {expression!r}: {exc}") from None
    return text


def validate_timing(timing: Timing, *, min_run_every: float = MIN_RUN_EVERY) -> Timing:
    """Check a timing and return it normalised; raises InvalidInput naming the problem.

    Args:
        min_run_every: smallest `run_every` accepted (the HTTP API passes 60).
    """
    for name in ("start_at", "end_at"):
        value = getattr(timing, name)
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"{name} must be a time")
    if timing.run_every is not None and timing.cron is not None:
        raise InvalidInput("give either run_every or cron, not both")
    if timing.run_every is not None:
        every = timing.run_every
        if (
            isinstance(every, bool)
            or not isinstance(every, int | float)
            or not math.isfinite(every)
        ):
            raise InvalidInput(f"run_every must be a number of seconds, got {every!r}")
        if every < min_run_every:
            raise InvalidInput(
                f"run_every must be at least {min_run_every:g} seconds, got {every:g}"
            )
    zone(timing.timezone)
    cron = check_cron(timing.cron) if timing.cron is not None else None
    if timing.end_at is not None and timing.end_at <= timing.start_at:
        raise InvalidInput("end_at must be after start_at")
    checked = replace(
        timing,
        start_at=float(timing.start_at),
        end_at=None if timing.end_at is None else float(timing.end_at),
        run_every=None if timing.run_every is None else float(timing.run_every),
        cron=cron,
    )
    if first_run_at(checked) is None:
        raise InvalidInput("this schedule would never run: no due time before end_at")
    return checked


def check_run_times(run_times: int | None) -> int | None:
    """`run_times` as stored: None (or Iron's 0) means no limit."""
    if run_times is None or run_times == 0:
        return None
    if isinstance(run_times, bool) or not isinstance(run_times, int):
        raise InvalidInput(f"run_times must be a whole number, got {run_times!r}")
    if not 0 < run_times <= MAX_RUN_TIMES:
        raise InvalidInput(
            f"run_times must be between 1 and {MAX_RUN_TIMES}, got {run_times}"
        )
    return run_times


# -- due times ----------------------------------------------------------------------


def _wall_to_instant(wall: datetime, tz: ZoneInfo) -> float:
    """A naive wall-clock time in `tz` to epoch seconds (see the module rules)."""
    instant = wall.replace(tzinfo=tz, fold=0).timestamp()
    if _local_wall(instant, tz) == wall:
        return instant  # exists (the first occurrence when it happens twice)
    # A wall time in a gap: run at the instant the clocks jump. Local time only
    # increases across a gap, so bisect between the two readings of `wall`.
    other = wall.replace(tzinfo=tz, fold=1).timestamp()
    lo, hi = math.floor(min(instant, other)), math.ceil(max(instant, other))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _local_wall(mid, tz) < wall:
            lo = mid
        else:
            hi = mid
    return float(hi)


def _local_wall(instant: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, tz).replace(tzinfo=None)


def _cron_walls(
    expression: str, start: datetime, *, backwards: bool = False
) -> Iterator[datetime]:
    # croniter is loaded with the first cron expression read: processes that
    # never meet one (most runners) start without it.
    from croniter import CroniterBadDateError, croniter

    it = croniter(expression, start)
    while True:
        try:
            yield it.get_prev(datetime) if backwards else it.get_next(datetime)
        except CroniterBadDateError:
            return


def _cron_instants_after(timing: Timing, after: float) -> Iterator[float]:
    """Cron instants strictly after `after`, increasing, duplicates (gap) removed."""
    assert timing.cron is not None  # noqa: S101 - callers check
    tz = zone(timing.timezone)
    # Matches are whole minutes, so starting from the whole second loses nothing.
    last = after
    for wall in _cron_walls(timing.cron, _local_wall(math.floor(after), tz)):
        instant = _wall_to_instant(wall, tz)
        if instant > last:
            last = instant
            yield instant


def _cron_at_or_before(timing: Timing, moment: float) -> float | None:
    """Latest cron instant at or before `moment`."""
    assert timing.cron is not None  # noqa: S101 - callers check
    tz = zone(timing.timezone)
    here = datetime.fromtimestamp(math.floor(moment), tz)
    start = here.replace(tzinfo=None) + timedelta(seconds=1)
    if here.fold:
        # In the repeated hour the wall clock reads earlier than instants that
        # already passed (their first occurrences): look up to the shift ahead.
        shift = here.replace(fold=0).utcoffset() or timedelta(0)
        start += shift - (here.utcoffset() or timedelta(0))
    for wall in _cron_walls(timing.cron, start, backwards=True):
        instant = _wall_to_instant(wall, tz)
        if instant <= moment:
            return instant
    return None  # the expression never matches (validation refuses such schedules)


def _in_window(timing: Timing, due: float | None) -> float | None:
    if due is None or due < timing.start_at:
        return None
    if timing.end_at is not None and due >= timing.end_at:
        return None
    return due


def first_run_at(timing: Timing) -> float | None:
    """The first due time of a schedule, or None if it has none."""
    if timing.cron is None:
        return _in_window(timing, timing.start_at)
    return _next_cron(timing, timing.start_at - 1.0)


def _next_cron(timing: Timing, after: float) -> float | None:
    for instant in _cron_instants_after(timing, max(after, timing.start_at - 1.0)):
        if instant >= timing.start_at:
            return _in_window(timing, instant)
    return None


def next_run_at(timing: Timing, after: float | None) -> float | None:
    """The first due time strictly after `after` (None: the first due time at all).

    Returns None when the schedule has no further due time before `end_at`.
    `run_times` is not considered here; see `plan_tick`.
    """
    if after is None:
        return first_run_at(timing)
    if timing.cron is not None:
        return _next_cron(timing, after)
    if after < timing.start_at:
        return _in_window(timing, timing.start_at)
    if timing.run_every is None:
        return None  # a one-off schedule has a single due time, at start_at
    k = math.floor((after - timing.start_at) / timing.run_every) + 1
    due = timing.start_at + k * timing.run_every
    while due <= after:  # float rounding
        k += 1
        due = timing.start_at + k * timing.run_every
    return _in_window(timing, due)


def last_due_at_or_before(timing: Timing, moment: float) -> float | None:
    """The latest due time at or before `moment`, or None if none has come yet."""
    if moment < timing.start_at:
        return None
    if timing.end_at is not None and moment >= timing.end_at:
        moment = math.nextafter(timing.end_at, -math.inf)
    if timing.cron is not None:
        return _in_window(timing, _cron_at_or_before(timing, moment))
    if timing.run_every is None:
        return timing.start_at
    k = math.floor((moment - timing.start_at) / timing.run_every)
    due = timing.start_at + k * timing.run_every
    while due > moment:  # pragma: no cover - a float rounding guard
        k -= 1
        due = timing.start_at + k * timing.run_every
    return due


def count_due_between(timing: Timing, first: float, last: float) -> int:
    """How many due times lie in [first, last] (capped at MAX_COUNTED_SKIPS)."""
    if last < first:
        return 0
    if timing.cron is None:
        if timing.run_every is None:
            return 1 if first <= timing.start_at <= last else 0
        k_first = math.ceil((first - timing.start_at) / timing.run_every - 1e-9)
        k_last = math.floor((last - timing.start_at) / timing.run_every + 1e-9)
        return min(max(k_last - k_first + 1, 0), MAX_COUNTED_SKIPS)
    count = 0
    for instant in _cron_instants_after(timing, first - 1.0):
        if instant > last or count >= MAX_COUNTED_SKIPS:
            break
        if instant >= first:
            count += 1
    return count


# -- decisions ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    """What the scheduler does for one due schedule.

    Attributes:
        due_at: the due time being decided (the key of its fire record).
        queue: whether a task is queued for `due_at`.
        skipped: due times passed over without a task: earlier missed ones, plus
            `due_at` itself when skipped for overlap or lateness.
        next_start: the next due time, or None when the schedule ends.
        status: the schedule's status afterwards.
        reason: why nothing was queued (`overlap`, `missed`, `error`), else None.
    """

    due_at: float
    queue: bool
    skipped: int
    next_start: float | None
    status: ScheduleStatus
    reason: str | None = None


def overlap_blocks(overlap: Overlap, max_concurrency: int | None, active: int) -> bool:
    """Whether earlier tasks still queued or running block a new one."""
    if overlap == Overlap.SKIP and active > 0:
        return True
    return max_concurrency is not None and active >= max_concurrency


def remaining_runs(run_times: int | None, run_count: int) -> int | None:
    """Tasks the schedule may still queue (None: no limit)."""
    return None if run_times is None else max(run_times - run_count, 0)


def plan_tick(
    timing: Timing,
    *,
    pending: float,
    now: float,
    run_count: int,
    run_times: int | None,
    catch_up: CatchUp,
    overlap: Overlap,
    max_concurrency: int | None = None,
    active: int = 0,
    runnable: bool = True,
    grace: float = MISFIRE_GRACE_SECONDS,
) -> Tick:
    """Decide one due schedule.

    Args:
        pending: the stored next due time (at or before `now`).
        now: the database clock.
        active: tasks of this schedule still queued or running.
        runnable: False when no task can be built (say, the code was deleted).

    Every due time from `pending` to `now` is decided here, once: at most one
    task is queued (for the latest of them); the rest count as skipped.
    """
    latest = last_due_at_or_before(timing, now)
    if latest is None or latest < pending:
        latest = pending
    missed = (
        0
        if latest == pending
        else max(count_due_between(timing, pending, latest) - 1, 1)
    )
    reason = None
    if catch_up == CatchUp.SKIP and (missed or now - latest > grace):
        reason = "missed"
    elif overlap_blocks(overlap, max_concurrency, active):
        reason = "overlap"
    elif not runnable:
        reason = "error"
    queue = reason is None
    skipped = missed + (1 if reason in ("missed", "overlap") else 0)
    after = next_run_at(timing, now)
    if after is None or remaining_runs(run_times, run_count + (1 if queue else 0)) == 0:
        return Tick(latest, queue, skipped, None, ScheduleStatus.COMPLETE, reason)
    return Tick(latest, queue, skipped, after, ScheduleStatus.SCHEDULED, reason)


def resume_at(timing: Timing, now: float) -> float | None:
    """Where a resumed (or redefined) schedule picks up: the next due time after `now`.

    Due times that passed while it was paused are not caught up; a start in the
    future is kept.
    """
    if now < timing.start_at:
        return first_run_at(timing)
    return next_run_at(timing, now)


def status_after_change(
    current: ScheduleStatus,
    next_start: float | None,
    run_times: int | None,
    run_count: int,
) -> ScheduleStatus:
    """Status after a definition change: paused stays paused, else by what is left."""
    if current == ScheduleStatus.PAUSED:
        return current
    if next_start is None or remaining_runs(run_times, run_count) == 0:
        return ScheduleStatus.COMPLETE
    return ScheduleStatus.SCHEDULED


def to_epoch(value: datetime | float | int | str | None, field: str) -> float | None:
    """A time given as an aware datetime, an ISO 8601 string or epoch seconds.

    Raises:
        InvalidInput: a naive datetime (no time zone) or an unparseable string.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a time, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidInput(f"{field} must be a finite time")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(
                f"{field} {value!r} is not an ISO 8601 time "
                "such as 2030-01-01T09:00:00+01:00"
            ) from None
        value = parsed
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(
                f"{field} has no time zone: "
                "give one, e.g. 2030-01-01T09:00:00Z or +01:00"
            )
        return value.astimezone(UTC).timestamp()
    raise InvalidInput(
        f"{field} must be a datetime, an ISO 8601 string or epoch seconds"
    )
