"""Tasks: statuses, the allowed transitions, and what a valid new task is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from workhorse.errors import InvalidInput, PayloadTooLarge


class TaskStatus(StrEnum):
    """Where a task is in its life. The last five are final."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    KILLED = "killed"

    @property
    def is_final(self) -> bool:
        """True when the task will not run again by itself."""
        return self not in (TaskStatus.QUEUED, TaskStatus.RUNNING)


FINAL_STATUSES = tuple(s for s in TaskStatus if s.is_final)

# status -> statuses it may move to. Retries move running -> queued.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.QUEUED: frozenset({TaskStatus.RUNNING, TaskStatus.CANCELLED}),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.QUEUED,
            TaskStatus.COMPLETE,
            TaskStatus.ERROR,
            TaskStatus.CANCELLED,
            TaskStatus.TIMEOUT,
            TaskStatus.KILLED,
        }
    ),
    # a finished task can be queued again by an explicit retry
    TaskStatus.COMPLETE: frozenset({TaskStatus.QUEUED}),
    TaskStatus.ERROR: frozenset({TaskStatus.QUEUED}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.QUEUED}),
    TaskStatus.TIMEOUT: frozenset({TaskStatus.QUEUED}),
    TaskStatus.KILLED: frozenset({TaskStatus.QUEUED}),
}


def can_move(src: TaskStatus, dst: TaskStatus) -> bool:
    """Whether a task may go from `src` to `dst`."""
    return dst in TRANSITIONS[src]


PRIORITIES = (0, 1, 2)
MAX_DELAY_SECONDS = 7 * 24 * 3600
MAX_TIMEOUT_SECONDS = 24 * 3600
MAX_RETRIES = 100
MAX_LABEL_LENGTH = 255
MAX_UNIQUE_KEY_LENGTH = 255
# A lost lease (dead runner) is retried this many times before the task is `killed`.
MAX_LOST_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options a caller may set when queueing; None means the code's default."""

    priority: int | None = None
    delay: float = 0.0
    timeout: int | None = None
    label: str | None = None
    cluster: str = "default"
    retries: int | None = None
    retries_delay: int | None = None
    backoff: bool | None = None
    schedule_id: str | None = None
    parent_id: str | None = None
    # While a task of this code with this key is queued or running, queueing
    # another stores nothing and answers with that task (see `build_task`).
    unique_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated task ready to insert."""

    id: str
    project_id: str
    code_name: str
    kind: str
    code_revision: int | None
    payload: str
    priority: int
    delay: float
    timeout: int
    label: str | None
    cluster: str
    retries: int
    retries_delay: int
    backoff: bool
    schedule_id: str | None
    parent_id: str | None
    unique_key: str | None = None


@dataclass(slots=True)
class Task:
    """A task as stored: a snapshot, read from the database (changing it changes
    nothing stored).

    Not frozen, unlike the other records: a runner builds one per task it claims,
    and a frozen dataclass of 30 fields takes nine times as long to build (ADR 0008).
    """

    id: str
    project_id: str
    code_name: str
    kind: str
    code_revision: int | None
    payload: str
    status: TaskStatus
    priority: int
    run_at: float
    timeout: int
    label: str | None
    cluster: str
    retries: int
    retries_delay: int
    backoff: bool
    attempt: int
    lost_count: int
    lease_token: str | None
    lease_expires_at: float | None
    runner_id: str | None
    created_at: float
    start_time: float | None
    end_time: float | None
    result: str | None
    error: str | None
    progress: int | None
    progress_message: str | None
    cancel_requested: bool
    schedule_id: str | None
    parent_id: str | None
    unique_key: str | None

    @property
    def duration(self) -> float | None:
        """Seconds the last attempt ran, once it has ended."""
        if self.start_time is None or self.end_time is None:
            return None
        return self.end_time - self.start_time


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a task, as recorded when it ended.

    `status` is the attempt's exit reason: a final TaskStatus, or `lost` when the
    runner stopped heartbeating.
    """

    task_id: str
    attempt: int
    runner_id: str | None
    start_time: float | None
    end_time: float
    status: str
    error: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a runner reports when an attempt ends.

    `retry_delay` set means the task goes back to `queued` that many seconds from
    now; `status` is then the attempt's own exit reason.
    """

    task_id: str
    lease_token: str
    status: TaskStatus
    result: str | None = None
    error: str | None = None
    retry_delay: float | None = None
    log: str | None = None


@dataclass(frozen=True, slots=True)
class CodeDefaults:
    """Per-code defaults applied when a task leaves an option unset."""

    name: str
    kind: str
    revision: int | None = None
    priority: int = 0
    timeout: int = 3600
    retries: int = 0
    retries_delay: int = 0
    backoff: bool = False
    paused: bool = False
    # Every task of the code is unique by its payload unless it names a key itself.
    unique: bool = False


def validate_payload(payload: str, limit: int) -> None:
    """Refuse payloads over `limit` bytes (UTF-8), with NUL characters (PostgreSQL
    text cannot hold them; refused on every backend) or that are not valid Unicode."""
    if "\x00" in payload:
        raise InvalidInput("payload may not contain NUL characters")
    if payload.isascii():  # a flag CPython keeps on every string: no scan
        size = len(payload)
    else:
        try:
            size = len(payload.encode())
        except UnicodeEncodeError:
            raise InvalidInput("payload is not valid Unicode text") from None
    if size > limit:
        raise PayloadTooLarge(f"payload is {size} bytes; the limit is {limit} bytes")


# One encoder, built once: json.dumps with non-default options builds a new one per call.
compact_json = json.JSONEncoder(separators=(",", ":")).encode


def python_payload(args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> str:
    """Encode a Python call as the JSON payload `{"args": [...], "kwargs": {...}}`."""
    try:
        return compact_json({"args": list(args), "kwargs": kwargs})
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"task arguments must be JSON-serialisable: {exc}") from None


def decode_python_payload(payload: str) -> tuple[list[Any], dict[str, Any]]:
    """Decode a Python task payload; refuse anything not of the documented shape."""
    try:
        data = json.loads(payload) if payload else {}
    except ValueError:
        raise InvalidInput("payload of a Python task must be JSON") from None
    if not isinstance(data, dict) or not set(data) <= {"args", "kwargs"}:
        raise InvalidInput(
            'payload of a Python task must be a JSON object {"args": [...], "kwargs": {...}}'
        )
    args, kwargs = data.get("args", []), data.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise InvalidInput('"args" must be a list and "kwargs" an object')
    return args, kwargs


def _check_int(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {value}")
    return value


def build_task(
    *,
    task_id: str,
    project_id: str,
    code: CodeDefaults,
    payload: str,
    options: TaskOptions,
    max_payload_bytes: int,
) -> NewTask:
    """Apply defaults and validate; raises InvalidInput naming the bad field."""
    if not isinstance(payload, str):
        raise InvalidInput("payload must be a string")
    validate_payload(payload, max_payload_bytes)
    priority = code.priority if options.priority is None else options.priority
    if priority not in PRIORITIES:
        raise InvalidInput(f"priority must be 0, 1 or 2, got {priority!r}")
    delay = options.delay
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not (0 <= delay <= MAX_DELAY_SECONDS)
    ):
        raise InvalidInput(
            f"delay must be between 0 and {MAX_DELAY_SECONDS} seconds, got {delay!r}"
        )
    timeout = _check_int(
        "timeout",
        code.timeout if options.timeout is None else options.timeout,
        1,
        MAX_TIMEOUT_SECONDS,
    )
    retries = _check_int(
        "retries",
        code.retries if options.retries is None else options.retries,
        0,
        MAX_RETRIES,
    )
    retries_delay = _check_int(
        "retries_delay",
        code.retries_delay if options.retries_delay is None else options.retries_delay,
        0,
        MAX_DELAY_SECONDS,
    )
    if options.label is not None and (
        not isinstance(options.label, str) or len(options.label) > MAX_LABEL_LENGTH
    ):
        raise InvalidInput(
            f"label must be a string of at most {MAX_LABEL_LENGTH} characters"
        )
    if not isinstance(options.cluster, str) or not options.cluster:
        raise InvalidInput("cluster must be a non-empty string")
    unique_key = options.unique_key
    if unique_key is not None:
        check_unique_key(unique_key)
    elif code.unique:
        unique_key = payload_key(payload)
    return NewTask(
        id=task_id,
        project_id=project_id,
        code_name=code.name,
        kind=code.kind,
        code_revision=code.revision,
        payload=payload,
        priority=priority,
        delay=float(delay),
        timeout=timeout,
        label=options.label,
        cluster=options.cluster,
        retries=retries,
        retries_delay=retries_delay,
        backoff=code.backoff if options.backoff is None else bool(options.backoff),
        schedule_id=options.schedule_id,
        parent_id=options.parent_id,
        unique_key=unique_key,
    )


def check_unique_key(key: object) -> None:
    """Refuse a unique key that is not a non-empty string of printable size."""
    if (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_UNIQUE_KEY_LENGTH
        or "\x00" in key
    ):
        raise InvalidInput(
            "unique_key must be a non-empty string of at most "
            f"{MAX_UNIQUE_KEY_LENGTH} characters, got {key!r:.80}"
        )


def payload_key(payload: str) -> str:
    """The unique key of a task of a code that is unique by payload."""
    return "payload:" + hashlib.sha256(payload.encode()).hexdigest()


_SHARED_FIELDS = tuple(
    f.name for f in fields(NewTask) if f.name not in ("id", "payload")
)


def build_tasks(
    *,
    ids: Sequence[str],
    project_id: str,
    code: CodeDefaults,
    payloads: Sequence[str],
    options: TaskOptions,
    max_payload_bytes: int,
) -> list[NewTask]:
    """`build_task` for payloads that share one set of options, checked once."""
    first = build_task(
        task_id=ids[0],
        project_id=project_id,
        code=code,
        payload=payloads[0],
        options=options,
        max_payload_bytes=max_payload_bytes,
    )
    shared = {name: getattr(first, name) for name in _SHARED_FIELDS}
    # A code unique by payload keys each task by its own payload.
    by_payload = code.unique and options.unique_key is None
    tasks = [first]
    for task_id, payload in zip(ids[1:], payloads[1:], strict=True):
        if not isinstance(payload, str):
            raise InvalidInput("payload must be a string")
        validate_payload(payload, max_payload_bytes)
        if by_payload:
            shared["unique_key"] = payload_key(payload)
        tasks.append(NewTask(id=task_id, payload=payload, **shared))
    return tasks
