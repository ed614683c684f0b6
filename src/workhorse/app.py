"""The Python SDK: define tasks with a decorator, queue them, follow them.

    import workhorse
    app = workhorse.App()

    @app.task(retries=3, timeout=60)
    def resize(image_id: int) -> dict: ...

    task = resize.queue(42)
    task.wait(timeout=30)
    print(task.status, task.result)

Async callers use the `a`-prefixed twins (`await resize.aqueue(42)`), which run
the same code in a worker thread.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from workhorse.client import DEFAULT_PROJECT, Client
from workhorse.clock import to_datetime
from workhorse.domain.rate import parse_rate
from workhorse.domain.task import Attempt, Task, TaskOptions, TaskStatus, python_payload
from workhorse.errors import InvalidInput, TaskFailed, WorkhorseError
from workhorse.schedules import Schedule, ScheduleClient, ScheduleInfo
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage
from workhorse.worker.registry import Registry, TaskDefinition

if TYPE_CHECKING:
    from workhorse.queues.sdk import QueueSet

P = ParamSpec("P")
R = TypeVar("R")
WAIT_POLL_MAX = 0.2


async def _in_thread(fn: Callable[[], R]) -> R:
    """Run blocking `fn` off the event loop (asyncio is loaded only by async callers)."""
    import asyncio  # keeps it out of every runner's start-up

    return await asyncio.to_thread(fn)


class App:
    """A set of Python tasks and a connection to the Workhorse database.

    Args:
        database_url: `sqlite:///path` or `postgresql://...`; defaults to
            `WORKHORSE_DATABASE_URL`, then `sqlite:///var/workhorse.db`.
        project_id: the project tasks belong to.
        migrate: apply pending migrations when the database is first opened.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        project_id: str = DEFAULT_PROJECT,
        settings: Settings | None = None,
        migrate: bool = True,
    ) -> None:
        self.settings = settings or Settings.from_env(database_url=database_url)
        self.project_id = project_id
        self.registry = Registry()
        self._migrate = migrate
        self._storage: Storage | None = None
        self._client: Client | None = None
        self._registered: set[str] = set()
        self._lock = threading.Lock()
        self._defined_schedules: dict[str, Schedule] = {}

    # -- connection -------------------------------------------------------------

    @property
    def storage(self) -> Storage:
        """The open storage (opened on first use)."""
        with self._lock:
            if self._storage is None:
                self._storage = open_storage(self.settings, migrate=self._migrate)
            return self._storage

    @property
    def client(self) -> Client:
        """The task/code client for this app's project."""
        storage = self.storage
        with self._lock:
            if self._client is None:
                self._client = Client(
                    storage, project_id=self.project_id, settings=self.settings
                )
            return self._client

    @property
    def queues(self) -> QueueSet:
        """Message queues of this app's project: `app.queues["orders"].post({...})`."""
        from workhorse.queues import MessageQueues
        from workhorse.queues.sdk import QueueSet

        ops = MessageQueues(
            self.storage, project_id=self.project_id, settings=self.settings
        )
        return QueueSet(ops)

    def register_all(self) -> None:
        """Make every task of this app known to the database (runners do this at start)."""
        for definition in self.registry:
            self._ensure_registered(definition.name)
        if self._defined_schedules:
            self.schedules.sync_defined(
                {f"task:{n}": (n, s) for n, s in self._defined_schedules.items()}
            )

    def _ensure_registered(self, name: str) -> None:
        if name in self._registered:
            return
        definition = self.registry.get(name)
        if definition is not None:
            self.client.register_python(name, definition.options)
        self._registered.add(name)

    def close(self) -> None:
        """Close the database connections."""
        with self._lock:
            if self._storage is not None:
                self._storage.close()
            self._storage = None
            self._client = None

    # -- defining ---------------------------------------------------------------

    def task(
        self,
        fn: Callable[P, R] | None = None,
        *,
        name: str | None = None,
        retries: int = 0,
        retries_delay: int = 0,
        backoff: bool = False,
        timeout: int = 3600,
        priority: int = 0,
        max_concurrency: int | None = None,
        rate_limit: str | float | None = None,
        unique: bool = False,
        schedule: Schedule | str | float | dict[str, Any] | None = None,
    ) -> Any:
        """Register a function as a task: `@app.task` or `@app.task(retries=3, ...)`.

        Options become the code's defaults; each queue call may override
        priority, timeout, retries, delay and label.

        `rate_limit`: starts of this task per second, counted across every
        runner on every host: `"10/s"`, `"100/m"`, `"5/2h"` or a number.

        `unique=True`: while a task with the same arguments is queued or running,
        queueing it again stores nothing and gives a handle on that task (every
        producer, any language: the key is a hash of the payload). A call may name
        its own key instead: `.options(unique_key="report-2026-12").queue()`.

        `schedule` runs the task periodically: a cron string (`"*/5 * * * *"`),
        seconds between runs, a dict of `Schedule` fields, or a `Schedule`. It is
        stored when a runner starts (`register_all`), once however many start.
        """
        options = {
            "retries": retries,
            "retries_delay": retries_delay,
            "backoff": backoff,
            "timeout": timeout,
            "priority": priority,
            "max_concurrency": max_concurrency,
            "rate_limit": parse_rate(rate_limit),
            "unique": unique,
        }

        def wrap(func: Callable[P, R]) -> TaskFunction[P, R]:
            task_name = name or func.__name__
            self.registry.add(TaskDefinition(task_name, func, options))
            if schedule is not None:
                defined = Schedule.coerce(schedule).validate()
                self._defined_schedules[task_name] = defined
            return TaskFunction(self, task_name, func)

        return wrap(fn) if fn is not None else wrap

    # -- schedules --------------------------------------------------------------

    @property
    def schedules(self) -> ScheduleClient:
        """Create, list, pause, resume, update and cancel schedules."""
        return ScheduleClient(self.client)

    def schedule(
        self,
        code_name: str,
        payload: str | dict[str, Any] | list[Any] | None = None,
        **fields: Any,
    ) -> ScheduleInfo:
        """Schedule a code (any code, not only this app's): fields as in `Schedule`.

        app.schedule("report", {"day": 1}, cron="0 6 * * *", timezone="UTC")
        """
        self._ensure_registered(code_name)
        return self.schedules.create(code_name, _encode(payload), **fields)

    # -- queueing ---------------------------------------------------------------

    def queue(
        self,
        code_name: str,
        payload: str | dict[str, Any] | list[Any] | None = None,
        *,
        delay: float = 0,
        priority: int | None = None,
        label: str | None = None,
        timeout: int | None = None,
        retries: int | None = None,
        retries_delay: int | None = None,
        cluster: str = "default",
        parent_id: str | None = None,
        unique_key: str | None = None,
    ) -> TaskHandle:
        """Queue one task of any code (a Python task or an uploaded package).

        `payload` is sent as is when a string, JSON-encoded otherwise. A Python
        task's payload has the shape `{"args": [...], "kwargs": {...}}`.

        `unique_key`: while a task of this code with this key is queued or
        running, store nothing and return a handle on that task instead (its
        `duplicate` is then True).
        """
        if (
            priority is None
            and type(delay) in (int, float)
            and delay == 0
            and timeout is None
            and label is None
            and cluster == "default"
            and retries is None
            and retries_delay is None
            and parent_id is None
            and unique_key is None
        ):
            options = _DEFAULT_OPTIONS
        else:
            options = TaskOptions(
                priority=priority,
                delay=delay,
                timeout=timeout,
                label=label,
                cluster=cluster,
                retries=retries,
                retries_delay=retries_delay,
                parent_id=parent_id,
                unique_key=unique_key,
            )
        if code_name not in self._registered:
            self._ensure_registered(code_name)
        client = self._client or self.client
        tasks, ids = client.queue_many_as(code_name, [_encode(payload)], options)
        return TaskHandle(client, ids[0], duplicate=ids[0] != tasks[0].id)

    def queue_many(
        self,
        code_name: str,
        payloads: Iterable[str | dict[str, Any] | list[Any] | None],
        **options: Any,
    ) -> list[TaskHandle]:
        """Queue many tasks of one code in one transaction (all or none)."""
        self._ensure_registered(code_name)
        client = self.client
        tasks, ids = client.queue_many_as(
            code_name, [_encode(p) for p in payloads], TaskOptions(**options)
        )
        return [
            TaskHandle(client, i, duplicate=i != t.id)
            for i, t in zip(ids, tasks, strict=True)
        ]

    def get_task(self, task_id: str) -> TaskHandle:
        """A handle on an existing task (raises NotFound if there is none)."""
        handle = TaskHandle(self.client, task_id)
        handle.refresh()
        return handle

    async def aqueue(
        self, code_name: str, payload: Any = None, **options: Any
    ) -> TaskHandle:
        """`queue` for async callers."""
        return await _in_thread(
            functools.partial(self.queue, code_name, payload, **options)
        )

    async def aqueue_many(
        self, code_name: str, payloads: Iterable[Any], **options: Any
    ) -> list[TaskHandle]:
        """`queue_many` for async callers."""
        items = list(payloads)
        return await _in_thread(
            functools.partial(self.queue_many, code_name, items, **options)
        )


_DEFAULT_OPTIONS = TaskOptions()


def _encode(payload: str | dict[str, Any] | list[Any] | None) -> str:
    if payload is None:
        return ""
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"payload must be a string or JSON-serialisable: {exc}"
        ) from None


class TaskFunction(Generic[P, R]):
    """A registered task: call it directly, or `.queue(...)` it to run on a runner."""

    def __init__(self, app: App, name: str, fn: Callable[P, R]) -> None:
        self.app = app
        self.name = name
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def queue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Queue a run with these arguments (JSON-serialisable)."""
        return self.app.queue(self.name, python_payload(args, kwargs))

    def options(self, **options: Any) -> _Bound:
        """Queue with options: `resize.options(delay=5, priority=2).queue(42)`."""
        return _Bound(self, options)

    def queue_many(
        self, calls: Iterable[Sequence[Any] | dict[str, Any]], **options: Any
    ) -> list[TaskHandle]:
        """Queue many runs in one transaction: each item is an args list or a kwargs dict."""
        payloads = [
            python_payload([], dict(c))
            if isinstance(c, dict)
            else python_payload(list(c), {})
            for c in calls
        ]
        return self.app.queue_many(self.name, payloads, **options)

    async def aqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """`queue` for async callers."""
        return await _in_thread(functools.partial(self.queue, *args, **kwargs))


class _Bound:
    def __init__(self, task: TaskFunction[Any, Any], options: dict[str, Any]) -> None:
        self.task = task
        self.opts = options

    def queue(self, *args: Any, **kwargs: Any) -> TaskHandle:
        return self.task.app.queue(
            self.task.name, python_payload(args, kwargs), **self.opts
        )

    async def aqueue(self, *args: Any, **kwargs: Any) -> TaskHandle:
        return await _in_thread(functools.partial(self.queue, *args, **kwargs))


class TaskHandle:
    """A queued task. Properties read the latest state from the database."""

    def __init__(
        self, client: Client, task_id: str, *, duplicate: bool = False
    ) -> None:
        self.client = client
        self.id = task_id
        # True when queueing stored nothing: a task holding the same unique key
        # was queued or running, and this handle is on that task.
        self.duplicate = duplicate
        self._task: Task | None = None

    def __repr__(self) -> str:
        return f"<TaskHandle {self.id}{' (duplicate)' if self.duplicate else ''}>"

    def refresh(self) -> Task:
        """Read the task again."""
        self._task = self.client.get(self.id)
        return self._task

    @property
    def task(self) -> Task:
        """The stored task as last read (read now if never read)."""
        return self._task or self.refresh()

    @property
    def status(self) -> TaskStatus:
        """Current status."""
        return self.refresh().status

    @property
    def result(self) -> Any:
        """The decoded return value of a completed Python task.

        Raises:
            TaskFailed: the task ended in another final status.
            WorkhorseError: the task has not finished.
        """
        task = self.refresh()
        if task.status == TaskStatus.COMPLETE:
            return json.loads(task.result) if task.result else None
        if task.status.is_final:
            raise TaskFailed(task.id, task.status.value, task.error)
        raise WorkhorseError(f"task {task.id} is still {task.status}")

    @property
    def error(self) -> str | None:
        """The last error message or traceback."""
        return self.refresh().error

    @property
    def log(self) -> str:
        """Output of the newest attempt."""
        return self.client.log(self.id)

    @property
    def progress(self) -> tuple[int | None, str | None]:
        """(percent, message) last reported."""
        task = self.refresh()
        return task.progress, task.progress_message

    @property
    def attempts(self) -> list[Attempt]:
        """Every recorded attempt."""
        return self.client.attempts(self.id)

    @property
    def created_at(self) -> datetime | None:
        """When it was queued."""
        return to_datetime(self.task.created_at)

    def wait(self, timeout: float | None = None) -> TaskHandle:
        """Block until the task is final.

        Raises:
            TimeoutError: not final after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.002
        while not self.refresh().status.is_final:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"task {self.id} still {self.task.status} after {timeout} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, WAIT_POLL_MAX)
        return self

    async def await_done(self, timeout: float | None = None) -> TaskHandle:  # noqa: ASYNC109
        """`wait` for async callers (the same deadline semantics as `wait`)."""
        return await _in_thread(functools.partial(self.wait, timeout))

    def cancel(self) -> TaskStatus:
        """Cancel (queued: at once; running: the runner stops it). Idempotent."""
        self._task = self.client.cancel(self.id)
        return self._task.status

    def retry(self, delay: float = 0) -> TaskHandle:
        """Queue a copy of this finished task; returns the new task."""
        return TaskHandle(self.client, self.client.retry(self.id, delay=delay))

    def children(self) -> dict[str, int]:
        """Status counts of the tasks this one queued (`current_task().queue_children`)."""
        return self.client.children_summary(self.id)
