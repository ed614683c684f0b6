"""Code name -> Python callable, with the options the decorator was given."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workhorse.errors import InvalidInput


@dataclass(frozen=True)
class TaskDefinition:
    """A registered Python task."""

    name: str
    fn: Callable[..., Any]
    options: dict[str, Any] = field(default_factory=dict)
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.fn))


class Registry:
    """The Python tasks one app defines."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDefinition] = {}

    def add(self, definition: TaskDefinition) -> None:
        """Register; a second definition under one name is refused."""
        existing = self._tasks.get(definition.name)
        if existing is not None and existing.fn is not definition.fn:
            raise InvalidInput(f"task name {definition.name!r} is registered twice")
        self._tasks[definition.name] = definition

    def get(self, name: str) -> TaskDefinition | None:
        """The definition, or None."""
        return self._tasks.get(name)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._tasks)

    def __iter__(self) -> Iterator[TaskDefinition]:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)
