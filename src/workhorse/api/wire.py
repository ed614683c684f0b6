"""Domain objects to Iron JSON and back, in one place.

Iron clients are strict about types (docs/iron-api.md §4.5): integers never carry
a fraction, times are RFC 3339 in UTC (or absent, never ""), ids are strings.
Inputs are read leniently: floats such as 3600.0 become ints, nulls and the
sentinels some clients send for "unset" (priority -3, timeout 0) mean "default".
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from workhorse.api.errors import ApiError
from workhorse.domain.rate import describe_rate
from workhorse.domain.task import Task

IRON_STATUSES = (
    "queued",
    "preparing",
    "running",
    "complete",
    "error",
    "cancelled",
    "timeout",
    "killed",
)


def rfc3339(epoch: float | None) -> str | None:
    """Epoch seconds as `2006-01-02T15:04:05.000Z`, or None."""
    if epoch is None:
        return None
    stamp = datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_time(value: Any, name: str) -> float | None:
    """An RFC 3339 / ISO 8601 time (or epoch seconds) to epoch seconds (naive: UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be an RFC 3339 time")
    text = value.strip()
    if text.startswith("0001-01-01"):  # Go's zero time means "unset"
        return None
    try:
        stamp = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ApiError(400, f"{name} must be an RFC 3339 time, got {value!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def as_int(value: Any, name: str) -> int | None:
    """A whole number from JSON (3600.0 is fine, 1.5 is not); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ApiError(400, f"{name} must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ApiError(400, f"{name} must be a whole number")


def as_number(value: Any, name: str) -> float | None:
    """A number of seconds (int or float); None stays None."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
    ):
        raise ApiError(400, f"{name} must be a number")
    return float(value)


def as_str(value: Any, name: str) -> str | None:
    """A string; None stays None."""
    if value is None or isinstance(value, str):
        return value
    raise ApiError(400, f"{name} must be a string")


def required_str(data: dict[str, Any], name: str) -> str:
    """A non-empty string field."""
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name} is required and must be a non-empty string")
    return value


def payload_text(value: Any) -> str:
    """A task payload: strings as they are, other JSON re-encoded, null as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, separators=(",", ":"))


def revision_id(code_id: str, rev: int | None) -> str:
    """The id of one code revision."""
    return f"{code_id}-{rev or 0}"


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def task_json(task: Task, code_id: str | None) -> dict[str, Any]:
    """A task as IronWorker v2 shows it."""
    times = [
        t for t in (task.created_at, task.start_time, task.end_time) if t is not None
    ]
    duration = task.duration
    delay = task.run_at - task.created_at
    return _drop_none(
        {
            "id": task.id,
            "project_id": task.project_id,
            "code_id": code_id or "",
            "code_history_id": revision_id(code_id or "", task.code_revision),
            "code_name": task.code_name,
            "code_rev": str(task.code_revision or 0),
            "status": task.status.value,
            "created_at": rfc3339(task.created_at),
            "updated_at": rfc3339(max(times)),
            "start_time": rfc3339(task.start_time),
            "end_time": rfc3339(task.end_time),
            "duration": None if duration is None else round(duration * 1000),
            "priority": task.priority,
            "timeout": int(task.timeout),
            "delay": int(delay) if delay >= 1 else None,
            "payload": task.payload,
            "cluster": task.cluster,
            "label": task.label,
            "msg": task.error or task.progress_message,
            "percent": task.progress,
            "retry_count": max(task.attempt - 1, 0),
            "schedule_id": task.schedule_id,
        }
    )


def code_json(row: dict[str, Any], checksum: str | None = None) -> dict[str, Any]:
    """A code (package or registered Python task) as IronWorker v2 shows it."""
    options = row.get("options") or {}
    rev = int(row.get("revision") or 0)
    return _drop_none(
        {
            "id": row["id"],
            "project_id": row["project_id"],
            "name": row["name"],
            "created_at": rfc3339(row["created_at"]),
            "updated_at": rfc3339(row["updated_at"]),
            "rev": rev,
            "latest_history_id": revision_id(row["id"], rev),
            "latest_change": rfc3339(row["updated_at"]),
            "latest_checksum": checksum,
            "runtime": row.get("runtime")
            or ("python" if row.get("kind") == "python" else None),
            "command": row.get("command"),
            "max_concurrency": row.get("max_concurrency"),
            "rate_limit": describe_rate(row.get("rate_limit")),
            "retries": row.get("retries", 0),
            "retries_delay": row.get("retries_delay", 0),
            "default_priority": row.get("priority", 0),
            "timeout": row.get("timeout"),
            "config": options.get("config"),
            "env_vars": options.get("env") or None,
            "image": options.get("image"),
            "limits": options.get("limits") or None,
            "paused": bool(row.get("paused")),
            "kind": row.get("kind"),
        }
    )


def revision_json(code: dict[str, Any], rev: dict[str, Any]) -> dict[str, Any]:
    """One stored revision of a code package."""
    return _drop_none(
        {
            "id": revision_id(code["id"], rev["revision"]),
            "code_id": code["id"],
            "project_id": code["project_id"],
            "name": code["name"],
            "created_at": rfc3339(rev["created_at"]),
            "rev": int(rev["revision"]),
            "checksum": rev.get("checksum"),
            "code_size": rev.get("size"),
            "runtime": rev.get("runtime"),
            "command": rev.get("command"),
        }
    )
