"""Workhorse: self-hosted background tasks and durable message queues.

Public API: `App` to define and queue tasks, `TaskHandle` to follow them,
`current_task()` inside a task, and the error types.
"""

from workhorse.app import App, TaskFunction, TaskHandle
from workhorse.domain.task import TaskStatus
from workhorse.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StaleLease,
    StorageCorrupt,
    StorageUnavailable,
    TaskFailed,
    WorkhorseError,
)
from workhorse.schedules import Schedule, ScheduleClient, ScheduleInfo
from workhorse.settings import Settings
from workhorse.worker.context import TaskContext, current_task

__all__ = [
    "App",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "Schedule",
    "ScheduleClient",
    "ScheduleInfo",
    "Settings",
    "StaleLease",
    "StorageCorrupt",
    "StorageUnavailable",
    "TaskContext",
    "TaskFailed",
    "TaskFunction",
    "TaskHandle",
    "TaskStatus",
    "WorkhorseError",
    "current_task",
]

__version__ = "0.1.0"
