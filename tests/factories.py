"""Objects that several test modules build the same way."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from workhorse.domain.task import Task, TaskStatus


def package_task(**overrides: Any) -> Task:
    """A claimed, running code-package task; `overrides` set any field."""
    values: dict[str, Any] = {f.name: None for f in fields(Task)}
    values.update(
        id="t1",
        project_id="p",
        code_name="hello",
        kind="package",
        code_revision=1,
        payload="{}",
        status=TaskStatus.RUNNING,
        priority=0,
        run_at=0.0,
        timeout=60,
        cluster="default",
        retries=0,
        retries_delay=0,
        backoff=False,
        attempt=1,
        lost_count=0,
        created_at=0.0,
        cancel_requested=False,
    )
    values.update(overrides)
    return Task(**values)
