"""Runs registered Python callables: sync ones in runner threads, async ones on a loop.

A sync task that times out or is cancelled gets TaskInterrupted raised in its thread
at its next Python bytecode; code blocked inside a C call stops when the call
returns. Code packages (child processes) are the tool for hard limits.
"""

from __future__ import annotations

import ctypes
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workhorse.domain.task import TaskStatus, compact_json, decode_python_payload
from workhorse.errors import TaskInterrupted, WorkhorseError
from workhorse.worker import capture
from workhorse.worker.context import TaskContext, reset_current, set_current
from workhorse.worker.registry import Registry, TaskDefinition
from workhorse.worker.runners.base import Running, RunResult

if TYPE_CHECKING:
    import asyncio

MAX_TRACEBACK_CHARS = 8000


def _raise_in_thread(thread_id: int) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(TaskInterrupted)
    )


def _completed(value: Any, buf: capture.LogBuffer) -> RunResult:
    try:
        result = "null" if value is None else compact_json(value)
    except (TypeError, ValueError) as exc:
        return RunResult(
            TaskStatus.ERROR,
            error=f"result is not JSON-serialisable: {exc}",
            log=buf.text() or None,
        )
    return RunResult(TaskStatus.COMPLETE, result=result, log=buf.text() or None)


def _failure(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return text[-MAX_TRACEBACK_CHARS:]


class PythonRunner:
    """Calls the registered function named by the task's code."""

    def __init__(
        self,
        registry: Registry,
        *,
        log_limit: int,
        report_progress: Callable[[Running, int, str | None], bool],
        queue_children: Callable[[Running, str, list[str], dict[str, Any]], list[str]],
    ) -> None:
        self.registry = registry
        self.log_limit = log_limit
        self._report_progress = report_progress
        self._queue_children = queue_children
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        capture.install()

    def _prepare(
        self, running: Running
    ) -> tuple[TaskDefinition, list[Any], dict[str, Any]]:
        definition = self.registry.get(running.task.code_name)
        if definition is None:
            raise WorkhorseError(
                f"no Python task {running.task.code_name!r} in this runner's app"
            )
        args, kwargs = decode_python_payload(running.task.payload)
        return definition, args, kwargs

    def _context(self, running: Running) -> TaskContext:
        task = running.task
        return TaskContext(
            id=task.id,
            attempt=task.attempt,
            code_name=task.code_name,
            payload=task.payload,
            _report_progress=lambda p, m: self._report_progress(running, p, m),
            _queue_children=lambda c, ps, o: self._queue_children(running, c, ps, o),
        )

    def run(self, running: Running) -> RunResult:
        """Run a sync task in the calling thread (async ones are handed to the loop)."""
        try:
            definition, args, kwargs = self._prepare(running)
        except WorkhorseError as exc:
            return RunResult(TaskStatus.ERROR, error=str(exc))
        if definition.is_async:
            return self._run_on_loop(running, definition, args, kwargs)
        buf = capture.LogBuffer(self.log_limit)
        ctx_token = set_current(self._context(running))
        buf_token = capture.bind(buf)
        try:
            thread_id = threading.get_ident()
            running.set_interrupt(lambda: _raise_in_thread(thread_id))
            try:
                value = definition.fn(*args, **kwargs)
            finally:
                running.set_interrupt(None)
        except TaskInterrupted:
            return RunResult(
                TaskStatus.ERROR, error="interrupted", log=buf.text() or None
            )
        except Exception as exc:  # the task's own failure, whatever it is
            return RunResult(
                TaskStatus.ERROR, error=_failure(exc), log=buf.text() or None
            )
        finally:
            capture.unbind(buf_token)
            reset_current(ctx_token)
        return _completed(value, buf)

    # -- async tasks ------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            import asyncio  # loaded only by runners with async tasks

            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="async-tasks", daemon=True
            )
            thread.start()
            self._loop, self._loop_thread = loop, thread
        return self._loop

    def _run_on_loop(
        self,
        running: Running,
        definition: TaskDefinition,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> RunResult:
        loop = self._ensure_loop()
        import asyncio  # see _ensure_loop

        future = asyncio.run_coroutine_threadsafe(
            self._run_async(running, definition, args, kwargs), loop
        )

        def cancel() -> None:
            loop.call_soon_threadsafe(future.cancel)

        running.set_interrupt(cancel)
        try:
            return future.result()
        except BaseException:  # cancelled by an abort
            return RunResult(TaskStatus.ERROR, error="interrupted")
        finally:
            running.set_interrupt(None)

    async def _run_async(
        self,
        running: Running,
        definition: TaskDefinition,
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> RunResult:
        buf = capture.LogBuffer(self.log_limit)
        set_current(self._context(running))
        capture.bind(buf)
        try:
            value = await definition.fn(*args, **kwargs)
        except Exception as exc:  # the task's own failure
            return RunResult(
                TaskStatus.ERROR, error=_failure(exc), log=buf.text() or None
            )
        return _completed(value, buf)

    def close(self) -> None:
        """Stop the async loop, if one was started."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=2)
            if not self._loop.is_running():
                self._loop.close()
            self._loop = None
