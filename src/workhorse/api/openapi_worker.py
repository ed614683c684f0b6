"""OpenAPI paths and schemas of IronWorker v2 (/2)."""

from __future__ import annotations

from workhorse.api.openapi import (
    PAGE,
    PER_PAGE,
    PROJECT,
    Schema,
    nullable,
    obj,
    op,
    path_param,
    query,
    ref,
)

P = "/2/projects/{project_id}"
TIME = {"type": "string", "format": "date-time"}
STR = {"type": "string"}
INT = {"type": "integer"}
CODE_ID = path_param("code_id")
TASK_ID = path_param("task_id")
SCHEDULE_ID = path_param("schedule_id")
STATUS_FLAGS = [
    "queued",
    "preparing",
    "running",
    "complete",
    "error",
    "cancelled",
    "timeout",
    "killed",
]


def _task() -> Schema:
    return obj(
        {
            "id": STR,
            "project_id": STR,
            "code_id": STR,
            "code_history_id": STR,
            "code_name": STR,
            "code_rev": STR,
            "status": STR,
            "created_at": TIME,
            "updated_at": TIME,
            "start_time": TIME,
            "end_time": TIME,
            "duration": INT,
            "priority": INT,
            "timeout": INT,
            "delay": INT,
            "payload": STR,
            "cluster": STR,
            "label": STR,
            "msg": STR,
            "percent": INT,
            "retry_count": INT,
            "schedule_id": STR,
        },
        [
            "id",
            "project_id",
            "code_name",
            "code_rev",
            "status",
            "created_at",
            "updated_at",
        ],
    )


def _new_task() -> Schema:
    return obj(
        {
            "code_name": {"type": "string", "minLength": 1},
            "payload": nullable("string"),
            "priority": nullable("integer"),
            "timeout": nullable("number"),
            "delay": nullable("number"),
            "label": nullable("string"),
            "cluster": nullable("string"),
            "retries": nullable("integer"),
            "retries_delay": nullable("integer"),
            "parent_id": nullable("string"),
            "unique_key": nullable("string"),
            "name": nullable("string"),
            "sync": nullable("boolean"),
        },
        ["code_name"],
    )


def _code() -> Schema:
    return obj(
        {
            "id": STR,
            "project_id": STR,
            "name": STR,
            "created_at": TIME,
            "updated_at": TIME,
            "rev": INT,
            "latest_history_id": STR,
            "latest_change": TIME,
            "latest_checksum": STR,
            "runtime": STR,
            "command": STR,
            "max_concurrency": INT,
            "retries": INT,
            "retries_delay": INT,
            "default_priority": INT,
            "timeout": INT,
            "config": STR,
            "env_vars": {"type": "object", "additionalProperties": STR},
            "image": STR,
            "limits": {"type": "object"},
            "paused": {"type": "boolean"},
            "kind": STR,
            "msg": STR,
        },
        ["id", "project_id", "name", "rev", "latest_change"],
    )


def _schedule() -> Schema:
    return obj(
        {
            "id": STR,
            "project_id": STR,
            "code_name": STR,
            "name": STR,
            "payload": STR,
            "status": STR,
            "created_at": TIME,
            "updated_at": TIME,
            "start_at": TIME,
            "end_at": TIME,
            "next_start": TIME,
            "last_run_time": TIME,
            "run_every": INT,
            "cron": STR,
            "timezone": STR,
            "run_times": INT,
            "run_count": INT,
            "error_count": INT,
            "skip_count": INT,
            "msg": STR,
            "priority": INT,
            "timeout": INT,
            "task_delay": INT,
            "label": STR,
            "cluster": STR,
            "max_concurrency": INT,
        },
        ["id", "project_id", "code_name", "status", "created_at"],
    )


def _new_schedule() -> Schema:
    schema = _new_task()
    schema["properties"].update(
        {
            "run_every": nullable("number"),
            "run_times": nullable("integer"),
            "start_at": nullable("string"),
            "end_at": nullable("string"),
            "cron": nullable("string"),
            "timezone": nullable("string"),
            "max_concurrency": nullable("integer"),
        }
    )
    return schema


def worker_schemas() -> dict[str, Schema]:
    """Component schemas of the worker and native APIs."""
    ids = {"type": "array", "items": obj({"id": STR}, ["id"])}
    return {
        "Task": _task(),
        "NewTask": _new_task(),
        "QueueTasks": obj(
            {
                "tasks": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": ref("NewTask"),
                }
            },
            ["tasks"],
        ),
        "Queued": obj({"msg": STR, "tasks": ids}, ["msg", "tasks"]),
        "Code": _code(),
        "Schedule": _schedule(),
        "NewSchedule": _new_schedule(),
        "CreateSchedules": obj(
            {
                "schedules": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": ref("NewSchedule"),
                }
            },
            ["schedules"],
        ),
        "Scheduled": obj({"msg": STR, "schedules": ids}, ["msg", "schedules"]),
    }


def _codes() -> dict[str, Schema]:
    upload_body = obj(
        {
            "data": {"type": "string", "description": "the code's JSON"},
            "file": {"type": "string", "format": "binary"},
        },
        ["data"],
    )
    stats = {"type": "object", "additionalProperties": INT}
    revisions = obj(
        {"revisions": {"type": "array", "items": {"type": "object"}}}, ["revisions"]
    )
    return {
        f"{P}/codes": {
            "parameters": [PROJECT],
            "get": op(
                "List code packages",
                "codes",
                params=[PAGE, PER_PAGE],
                ok=obj({"codes": {"type": "array", "items": ref("Code")}}, ["codes"]),
            ),
            "post": op(
                "Upload a code package revision",
                "codes",
                body=upload_body,
                body_type="multipart/form-data",
                ok=ref("Code"),
            ),
        },
        f"{P}/codes/{{code_id}}": {
            "parameters": [PROJECT, CODE_ID],
            "get": op("Get a code package", "codes", ok=ref("Code")),
            "delete": op("Delete a code package", "codes"),
        },
        f"{P}/codes/{{code_id}}/revisions": {
            "parameters": [PROJECT, CODE_ID],
            "get": op("List revisions", "codes", params=[PAGE, PER_PAGE], ok=revisions),
        },
        f"{P}/codes/{{code_id}}/download": {
            "parameters": [PROJECT, CODE_ID],
            "get": op(
                "Download a revision's zip",
                "codes",
                params=[
                    query(
                        "revision",
                        {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                    )
                ],
                ok={"type": "string", "format": "binary"},
                ok_type="application/zip",
            ),
        },
        f"{P}/codes/{{code_id}}/stats": {
            "parameters": [PROJECT, CODE_ID],
            "get": op("Task counts per status", "codes", ok=stats),
        },
        **{
            f"{P}/codes/{{code_id}}/{action}": {
                "parameters": [PROJECT, CODE_ID],
                "post": op(summary, "codes"),
            }
            for action, summary in (
                ("pause_task_queue", "Pause the code's task queue"),
                ("resume_task_queue", "Resume the code's task queue"),
                ("cancel_all", "Cancel the code's queued and running tasks"),
            )
        },
    }


def _tasks() -> dict[str, Schema]:
    flags = [
        query(s, {"type": "string"}, "filter by status (presence counts)")
        for s in STATUS_FLAGS
    ]
    listing = [
        PAGE,
        PER_PAGE,
        query("code_name", STR),
        query("label", STR),
        query("cluster", STR),
        *flags,
        query("from_time", {"type": "integer", "minimum": 0, "maximum": 2**40}),
        query("to_time", {"type": "integer", "minimum": 0, "maximum": 2**40}),
    ]
    text = {"type": "string"}
    webhook_params = [
        query("code_name", {"type": "string", "minLength": 1}),
        query("priority", {"type": "integer", "minimum": 0, "maximum": 2}),
        query("cluster", STR),
        query("label", STR),
        query("timeout", {"type": "integer", "minimum": 1, "maximum": 86400}),
        query("delay", {"type": "integer", "minimum": 0, "maximum": 604800}),
    ]
    progress = obj(
        {"percent": {"type": "number"}, "msg": nullable("string")}, ["percent"]
    )
    return {
        f"{P}/tasks": {
            "parameters": [PROJECT],
            "get": op(
                "List tasks, newest first",
                "tasks",
                params=listing,
                ok=obj({"tasks": {"type": "array", "items": ref("Task")}}, ["tasks"]),
            ),
            "post": op(
                "Queue tasks", "tasks", body=ref("QueueTasks"), ok=ref("Queued")
            ),
        },
        f"{P}/tasks/webhook": {
            "parameters": [PROJECT],
            "post": op(
                "Queue a task from a raw body",
                "tasks",
                params=webhook_params,
                body={"type": "string"},
                body_type="text/plain",
                ok=obj({"id": STR, "msg": STR}, ["id", "msg"]),
            ),
        },
        f"{P}/tasks/{{task_id}}": {
            "parameters": [PROJECT, TASK_ID],
            "get": op("Get a task", "tasks", ok=ref("Task")),
        },
        f"{P}/tasks/{{task_id}}/log": {
            "parameters": [PROJECT, TASK_ID],
            "get": op(
                "A task's output (404 until there is some)",
                "tasks",
                ok=text,
                ok_type="text/plain",
            ),
        },
        f"{P}/tasks/{{task_id}}/outlog": {
            "parameters": [PROJECT, TASK_ID],
            "get": op(
                "A task's output (Iron's stdout log)",
                "tasks",
                ok=text,
                ok_type="text/plain",
            ),
        },
        f"{P}/tasks/{{task_id}}/cancel": {
            "parameters": [PROJECT, TASK_ID],
            "post": op("Cancel a task (idempotent)", "tasks"),
        },
        f"{P}/tasks/{{task_id}}/progress": {
            "parameters": [PROJECT, TASK_ID],
            "post": op("Report progress", "tasks", body=progress),
        },
        f"{P}/tasks/{{task_id}}/retry": {
            "parameters": [PROJECT, TASK_ID],
            "post": op(
                "Queue a copy of a task",
                "tasks",
                body=obj({"delay": nullable("number")}),
                ok=ref("Queued"),
            ),
        },
    }


def _schedules() -> dict[str, Schema]:
    return {
        f"{P}/schedules": {
            "parameters": [PROJECT],
            "get": op(
                "List schedules",
                "schedules",
                params=[PAGE, PER_PAGE],
                ok=obj(
                    {"schedules": {"type": "array", "items": ref("Schedule")}},
                    ["schedules"],
                ),
            ),
            "post": op(
                "Create schedules",
                "schedules",
                body=ref("CreateSchedules"),
                ok=ref("Scheduled"),
            ),
        },
        f"{P}/schedules/{{schedule_id}}": {
            "parameters": [PROJECT, SCHEDULE_ID],
            "get": op("Get a schedule", "schedules", ok=ref("Schedule")),
            "put": op(
                "Change a schedule",
                "schedules",
                body=ref("NewSchedule"),
                ok=ref("Schedule"),
                errors=(400, 401, 404, 406, 409, 413, 429, 503),
            ),
        },
        f"{P}/schedules/{{schedule_id}}/cancel": {
            "parameters": [PROJECT, SCHEDULE_ID],
            "post": op("Cancel a schedule (idempotent)", "schedules"),
        },
    }


def worker_paths() -> dict[str, Schema]:
    """Every IronWorker v2 path."""
    project = obj(
        {"id": STR, "name": STR, "type": STR, "status": STR, "created_at": TIME},
        ["id", "name"],
    )
    cluster = obj({"id": STR, "name": STR}, ["id", "name"])
    return {
        "/2/projects/{project_id}": {
            "parameters": [PROJECT],
            "get": op("The project (ironcli reads its name)", "projects", ok=project),
        },
        "/2/stacks": {
            "get": op("Stack names", "projects", ok={"type": "array", "items": STR})
        },
        "/2/clusters": {
            "get": op(
                "Clusters (only `default`)",
                "projects",
                ok=obj({"clusters": {"type": "array", "items": cluster}}, ["clusters"]),
            )
        },
        "/2/clusters/{cluster_id}": {
            "parameters": [path_param("cluster_id")],
            "get": op(
                "One cluster", "projects", ok=obj({"cluster": cluster}, ["cluster"])
            ),
        },
        **_codes(),
        **_tasks(),
        **_schedules(),
    }
