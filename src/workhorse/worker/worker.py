"""Worker: composes fetcher, runner threads, supervisor, completer and maintenance.

worker = Worker(storage, registry=app.registry, config=WorkerConfig(concurrency=8))
worker.start()
...
worker.stop()          # graceful: stop claiming, let tasks finish, hand the rest back
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workhorse.client import DEFAULT_PROJECT, Client
from workhorse.domain.ids import new_id
from workhorse.domain.retry import RetryPolicy, next_retry_delay, should_retry
from workhorse.domain.task import Outcome, Task, TaskOptions, TaskStatus
from workhorse.errors import StorageUnavailable, TaskInterrupted
from workhorse.maintenance.election import Election
from workhorse.maintenance.fanin import FanIn
from workhorse.maintenance.loop import MaintenanceLoop, Service
from workhorse.maintenance.pruner import Pruner
from workhorse.maintenance.rescuer import Rescuer
from workhorse.maintenance.scheduler import Scheduler
from workhorse.metrics import RunnerCollector, RunnerGauges, RunnerStats, TaskCounts
from workhorse.storage import Storage
from workhorse.worker.codecache import CodeCache
from workhorse.worker.completer import Completer
from workhorse.worker.fetcher import Fetcher, Prefetch
from workhorse.worker.pusher import Pusher
from workhorse.worker.registry import Registry
from workhorse.worker.runners.base import Running, RunResult
from workhorse.worker.runners.process import Launcher, ProcessRunner
from workhorse.worker.runners.python import PythonRunner
from workhorse.worker.supervisor import Supervisor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerConfig:
    """How a runner process behaves.

    Attributes:
        concurrency: tasks run at once (threads).
        prefetch: extra tasks claimed ahead of free threads; None adapts it to the
            tasks' run time (about 20 ms of work per thread, 1 to 200).
        packages: whether this runner runs code packages (child processes).
        shutdown_grace: seconds running tasks get to finish on a graceful stop.
        kill_grace: seconds between SIGTERM and SIGKILL for a child process.
        retention_seconds: finished tasks older than this are pruned.
    """

    concurrency: int = 8
    prefetch: int | None = None
    cluster: str = "default"
    project_id: str = DEFAULT_PROJECT
    packages: bool = True
    shutdown_grace: float = 30.0
    kill_grace: float = 5.0
    retention_seconds: float = 7 * 24 * 3600.0
    cache_dir: Path = field(default_factory=lambda: Path("var") / "cache" / "code")
    maintenance: bool = True
    push: bool = True  # deliver push-queue messages and run queue upkeep
    runner_id: str | None = None


class Worker:
    """One runner process's engine."""

    def __init__(
        self,
        storage: Storage,
        *,
        registry: Registry | None = None,
        config: WorkerConfig | None = None,
        launcher: Launcher | None = None,
        extra_services: list[Service] | None = None,
    ) -> None:
        self.storage = storage
        self.config = config or WorkerConfig()
        self.registry = registry or Registry()
        self.id = (
            self.config.runner_id
            or f"{socket.gethostname()}-{os.getpid()}-{new_id()[-6:]}"
        )
        settings = storage.settings
        self.lease_seconds = settings.lease_seconds
        self.prefetch = Prefetch(self.config.concurrency, fixed=self.config.prefetch)
        self._inflight: dict[str, Running] = {}
        self._drained = threading.Event()
        self._work: queue.SimpleQueue[Running | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self.completer = Completer()
        self.stats = RunnerStats()
        self.python = PythonRunner(
            self.registry,
            log_limit=settings.max_log_bytes,
            report_progress=self._report_progress,
            queue_children=self._queue_children,
        )
        if launcher is None and self.config.packages:
            # Default: a bubblewrap sandbox when it works here, else a plain child.
            # (Loaded here: a runner of Python tasks alone starts without it.)
            from workhorse.worker.runners.sandbox import choose_launcher

            launcher = choose_launcher(settings)
        self.process = ProcessRunner(
            CodeCache(storage, self.config.cache_dir),
            launcher=launcher,
            log_limit=settings.max_log_bytes,
            append_log=self._append_log,
            kill_grace=self.config.kill_grace,
        )
        self.fetcher = Fetcher(
            storage,
            completer=self.completer,
            capacity=self.prefetch.capacity,
            held=self._inflight.__len__,
            waiting=self._work.qsize,
            dispatch=self._dispatch,
            stats=self.stats,
            claim_args={
                "runner_id": self.id,
                "cluster": self.config.cluster,
                "project_id": self.config.project_id,
                "codes": self.registry.names(),
                "packages": self.config.packages,
                "lease_seconds": self.lease_seconds,
            },
            stopping=self._stopping,
        )
        self.supervisor = Supervisor(
            storage,
            runner_id=self.id,
            lease_seconds=self.lease_seconds,
            inflight=self._snapshot,
            abort=self.abort,
            running_count=lambda: len(self._inflight),
            status=lambda: "stopping" if self._stopping.is_set() else "running",
            stats=self.stats,
        )
        services: list[Service] = [
            Rescuer(storage),
            FanIn(storage),
            Pruner(storage, retention_seconds=self.config.retention_seconds),
            Scheduler(storage),
            *(extra_services or []),
        ]
        self.maintenance = (
            MaintenanceLoop(
                Election(storage, self.id, ttl=self.lease_seconds), services
            )
            if self.config.maintenance
            else None
        )
        self.pusher = Pusher(storage) if self.config.push else None

    # -- life cycle -------------------------------------------------------------

    def start(self) -> None:
        """Register, then start every part."""
        self.storage.run(
            lambda tx: tx.runners.upsert(
                {
                    "id": self.id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "cluster": self.config.cluster,
                    "concurrency": self.config.concurrency,
                    "codes": json.dumps(self.registry.names()),
                    "sandbox": getattr(self.process.launcher, "name", "process"),
                    "now": None,
                }
            ),
            retry_for=float("inf"),
        )
        for i in range(self.config.concurrency):
            thread = threading.Thread(
                target=self._execute_loop, name=f"task-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.supervisor.start()
        self.fetcher.start()
        if self.maintenance is not None:
            self.maintenance.start()
        if self.pusher is not None:
            self.pusher.start()
        log.info("runner %s started", self.id, extra={"event": "runner_started"})

    def stop(self, grace: float | None = None) -> None:
        """Stop claiming, let running tasks finish for `grace` seconds, hand the rest back."""
        if self._stopped.is_set():
            return
        grace = self.config.shutdown_grace if grace is None else grace
        self._stopping.set()
        self.fetcher.stop_claiming()
        handed_back = self._take_unstarted()
        deadline = time.monotonic() + grace
        while self._started_inflight() and time.monotonic() < deadline:
            self._drained.wait(min(0.1, max(deadline - time.monotonic(), 0)))
            self._drained.clear()
        for r in self._snapshot():
            if r.abort(None, "runner shut down"):
                handed_back.append((r.task.id, r.token, True))
        for _ in self._threads:
            self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=self.config.kill_grace + 1)
        self.fetcher.join()  # writes the outcomes still queued
        self._hand_back(handed_back)
        self.supervisor.stop()
        if self.maintenance is not None:
            self.maintenance.stop()
        if self.pusher is not None:
            self.pusher.stop()
        self.python.close()
        with contextlib.suppress(StorageUnavailable):
            self.storage.run(lambda tx: tx.runners.delete(self.id), retry_for=2)
        self._stopped.set()
        log.info("runner %s stopped", self.id, extra={"event": "runner_stopped"})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped."""
        return self._stopped.wait(timeout)

    # -- dispatch and execution ---------------------------------------------------

    def _dispatch(self, task: Task, token: str) -> None:
        running = Running(task, token)
        self._inflight[task.id] = running
        self._work.put(running)

    def _execute_loop(self) -> None:
        counts = self.stats.for_thread()
        while True:
            running = self._work.get()
            if running is None:
                return
            try:
                self._execute(running, counts)
            except TaskInterrupted:
                # An interruption can land a few bytecodes after the task returned.
                pass
            finally:
                self._forget(running)

    def _execute(self, running: Running, counts: TaskCounts) -> None:
        if running.aborted is not None:
            return
        running.started = True
        started = time.monotonic()
        running.deadline = started + running.task.timeout
        result = self._run(running)
        seconds = time.monotonic() - started
        self.prefetch.observe(seconds)
        counts.task_finished(running.task.code_name, result.status.value, seconds)
        if running.finish():
            self.completer.put(self._outcome(running, result))

    def _run(self, running: Running) -> RunResult:
        try:
            if running.task.kind == "python":
                return self.python.run(running)
            return self.process.run(running)
        except Exception as exc:  # a runner bug must not kill the thread
            log.exception(
                "runner failed on task %s",
                running.task.id,
                extra={"event": "runner_bug"},
            )
            return RunResult(TaskStatus.ERROR, error=f"runner error: {exc}")

    def _outcome(self, running: Running, result: RunResult) -> Outcome:
        task = running.task
        retry = None
        if should_retry(result.status):
            policy = RetryPolicy(task.retries, task.retries_delay, task.backoff)
            retry = next_retry_delay(policy, task.attempt - task.lost_count)
        return Outcome(
            task_id=task.id,
            lease_token=running.token,
            status=result.status,
            result=result.result,
            error=result.error,
            retry_delay=retry,
            log=result.log,
        )

    def abort(self, running: Running, status: TaskStatus | None, reason: str) -> None:
        """End an attempt now (timeout, cancel) or drop it (lease lost: status None)."""
        if not running.abort(status, reason):
            return
        log.info(
            "task %s aborted: %s",
            running.task.id,
            reason,
            extra={"event": "task_aborted"},
        )
        if status is not None:
            self.completer.put(self._outcome(running, RunResult(status, error=reason)))
        if not running.started:
            return  # the thread that picks it up will release the slot

    def _forget(self, running: Running) -> None:
        self._inflight.pop(running.task.id, None)
        self.fetcher.slot_freed()
        if self._stopping.is_set():
            self._drained.set()

    def collector(self) -> RunnerCollector:
        """This runner's Prometheus metrics (see `workhorse.metrics`)."""
        return RunnerCollector(
            self.stats,
            RunnerGauges(
                running=lambda: sum(1 for r in self._snapshot() if r.started),
                held=self._inflight.__len__,
                capacity=self.prefetch.capacity,
                recorded=lambda: self.completer.recorded,
                stale=lambda: self.completer.stale,
            ),
        )

    def _snapshot(self) -> list[Running]:
        # dict operations are atomic under the GIL; copy() gives a consistent view
        return list(self._inflight.copy().values())

    def _started_inflight(self) -> bool:
        return any(r.started for r in self._snapshot())

    def _take_unstarted(self) -> list[tuple[str, str, bool]]:
        back = []
        for r in self._snapshot():
            if not r.started and r.abort(None, "runner shut down"):
                back.append((r.task.id, r.token, False))
        return back

    def _hand_back(self, handed_back: list[tuple[str, str, bool]]) -> None:
        if not handed_back:
            return
        try:
            self.storage.run(lambda tx: tx.tasks.release(handed_back), retry_for=5)
        except StorageUnavailable:
            log.warning(
                "could not hand %d tasks back; they return when their leases expire",
                len(handed_back),
                extra={"event": "hand_back_failed"},
            )

    # -- callbacks from runners ------------------------------------------------

    def _report_progress(
        self, running: Running, percent: int, message: str | None
    ) -> bool:
        return self.storage.run(
            lambda tx: tx.tasks.set_progress(
                running.task.id, running.token, percent, message
            )
        )

    def _queue_children(
        self,
        running: Running,
        code_name: str,
        payloads: list[str],
        options: dict[str, Any],
    ) -> list[str]:
        parent = running.task
        client = Client(self.storage, project_id=parent.project_id)
        then = options.pop("then", None)
        opts = TaskOptions(
            **{"cluster": parent.cluster, **options, "parent_id": parent.id}
        )
        return client.queue_children(parent.id, code_name, payloads, opts, then=then)

    def _append_log(self, running: Running, chunk: int, text: str) -> None:
        self.storage.run(
            lambda tx: tx.tasks.append_log(
                running.task.id, running.task.attempt, chunk, text
            )
        )
