"""OpenAPI paths and schemas of the native API (/v1)."""

from __future__ import annotations

from workhorse.api.openapi import (
    PROJECT,
    Schema,
    nullable,
    obj,
    op,
    path_param,
    query,
    ref,
)

N = "/v1/projects/{project_id}"
TIME = {"type": "string", "format": "date-time"}
STR = {"type": "string"}
INT = {"type": "integer"}
TASK_ID = path_param("task_id")


def native_schemas() -> dict[str, Schema]:
    """Component schemas of the native API."""
    return {"NativeTask": _native_task()}


def _native_task() -> Schema:
    return obj(
        {
            "id": STR,
            "project_id": STR,
            "code_name": STR,
            "kind": STR,
            "code_revision": nullable("integer"),
            "status": STR,
            "payload": STR,
            "priority": INT,
            "timeout": INT,
            "label": nullable("string"),
            "cluster": STR,
            "retries": INT,
            "retries_delay": INT,
            "backoff": {"type": "boolean"},
            "attempt": INT,
            "run_at": TIME,
            "created_at": TIME,
            "start_time": nullable("string"),
            "end_time": nullable("string"),
            "duration": nullable("number"),
            "result": {},
            "error": nullable("string"),
            "progress": nullable("integer"),
            "progress_message": nullable("string"),
            "cancel_requested": {"type": "boolean"},
            "schedule_id": nullable("string"),
            "parent_id": nullable("string"),
            "unique_key": nullable("string"),
        },
        ["id", "project_id", "code_name", "status", "payload", "created_at"],
    )


def native_paths() -> dict[str, Schema]:
    """The native /v1 API."""
    attempt = obj(
        {
            "attempt": INT,
            "runner_id": nullable("string"),
            "start_time": nullable("string"),
            "end_time": nullable("string"),
            "status": STR,
            "error": nullable("string"),
        },
        ["attempt", "status"],
    )
    runner = obj(
        {
            "id": STR,
            "host": STR,
            "cluster": STR,
            "concurrency": INT,
            "running": INT,
            "sandbox": STR,
            "status": STR,
            "heartbeat_age": {"type": "number"},
        },
        ["id"],
    )
    return {
        f"{N}/tasks": {
            "parameters": [PROJECT],
            "post": op(
                "Queue tasks (with retries, parent_id and unique_key)",
                "native",
                body=ref("QueueTasks"),
                status=201,
                ok=obj(
                    {
                        "tasks": {
                            "type": "array",
                            "items": obj(
                                {"id": STR, "duplicate": {"type": "boolean"}},
                                ["id", "duplicate"],
                            ),
                        }
                    },
                    ["tasks"],
                ),
            ),
        },
        f"{N}/tasks/{{task_id}}": {
            "parameters": [PROJECT, TASK_ID],
            "get": op("A task with its result", "native", ok=ref("NativeTask")),
        },
        f"{N}/tasks/{{task_id}}/attempts": {
            "parameters": [PROJECT, TASK_ID],
            "get": op(
                "A task's attempts",
                "native",
                ok=obj({"attempts": {"type": "array", "items": attempt}}, ["attempts"]),
            ),
        },
        f"{N}/tasks/{{task_id}}/children": {
            "parameters": [PROJECT, TASK_ID],
            "get": op(
                "A task's children and their status counts",
                "native",
                params=[
                    query(
                        "per_page", {"type": "integer", "minimum": 1, "maximum": 1000}
                    )
                ],
                ok=obj(
                    {
                        "summary": {"type": "object", "additionalProperties": INT},
                        "total": INT,
                        "tasks": {"type": "array", "items": ref("NativeTask")},
                    },
                    ["summary", "total", "tasks"],
                ),
            ),
        },
        f"{N}/stats": {
            "parameters": [PROJECT],
            "get": op(
                "Task counts per code and status",
                "native",
                ok=obj({"codes": {"type": "object"}}, ["codes"]),
            ),
        },
        f"{N}/runners": {
            "parameters": [PROJECT],
            "get": op(
                "Live runners",
                "native",
                ok=obj({"runners": {"type": "array", "items": runner}}, ["runners"]),
            ),
        },
    }
