"""The worker end to end, in-process, on both backends."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import workhorse
from workhorse import App, TaskStatus
from workhorse.client import Client, CodePackage
from workhorse.errors import TaskFailed
from workhorse.worker.worker import Worker


def test_python_task_runs_and_records_result_log_progress(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        print("adding", a, b)
        workhorse.current_task().progress(60, "most of it")
        return a + b

    start_worker(app)
    task = add.queue(2, 3).wait(10)
    assert task.status == TaskStatus.COMPLETE
    assert task.result == 5
    assert task.log == "adding 2 3\n"
    assert task.progress == (60, "most of it")
    (attempt,) = task.attempts
    assert attempt.status == "complete"


def test_failure_records_the_traceback_and_result_raises(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def boom() -> None:
        raise ValueError("bad value")

    start_worker(app)
    task = boom.queue().wait(10)
    assert task.status == TaskStatus.ERROR
    assert "ValueError: bad value" in (task.error or "")
    with pytest.raises(TaskFailed, match="bad value"):
        _ = task.result


def test_retries_until_success(app: App, start_worker: Callable[..., Worker]) -> None:
    calls: list[int] = []

    @app.task(retries=3)
    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "ok"

    start_worker(app)
    task = flaky.queue().wait(10)
    assert task.result == "ok"
    assert [a.status for a in task.attempts] == ["error", "error", "complete"]


def test_retries_run_out_and_the_task_ends_in_error(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task(retries=1)
    def always() -> None:
        raise RuntimeError("never")

    start_worker(app)
    task = always.queue().wait(10)
    assert task.status == TaskStatus.ERROR
    assert len(task.attempts) == 2


def test_unserialisable_result_is_an_error(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def odd() -> object:
        return object()

    start_worker(app)
    task = odd.queue().wait(10)
    assert task.status == TaskStatus.ERROR
    assert "JSON" in (task.error or "")


def test_async_task_runs(app: App, start_worker: Callable[..., Worker]) -> None:
    @app.task
    async def double(x: int) -> int:
        return x * 2

    start_worker(app)
    assert double.queue(21).wait(10).result == 42


def test_python_task_over_its_timeout_is_interrupted(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    stopped = threading.Event()

    @app.task(timeout=1)
    def spin() -> None:
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()

    start_worker(app)
    task = spin.queue().wait(15)
    assert task.status == TaskStatus.TIMEOUT
    assert stopped.wait(10)


def test_cancel_stops_a_running_python_task(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    started, stopped = threading.Event(), threading.Event()

    @app.task
    def wait_forever() -> None:
        started.set()
        try:
            while True:
                time.sleep(0.01)
        finally:
            stopped.set()

    start_worker(app)
    task = wait_forever.queue()
    assert started.wait(10)
    task.cancel()
    assert task.wait(15).status == TaskStatus.CANCELLED
    assert stopped.wait(10)


def test_max_concurrency_holds_across_two_workers(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]
    release = threading.Event()

    @app.task(max_concurrency=2)
    def limited() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1

    start_worker(app, concurrency=4)
    start_worker(app, concurrency=4)
    tasks = limited.queue_many([[] for _ in range(6)])
    deadline = time.monotonic() + 10
    while running[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running[0] == 2
    release.set()
    for t in tasks:
        assert t.wait(20).status == TaskStatus.COMPLETE
    assert peak[0] == 2


def test_graceful_stop_finishes_running_and_hands_back_the_rest(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    started = threading.Event()
    finish = threading.Event()

    @app.task
    def slow() -> str:
        started.set()
        finish.wait(10)
        return "done"

    worker = start_worker(app, concurrency=1, prefetch=3)
    tasks = slow.queue_many([[] for _ in range(4)])
    assert started.wait(10)
    stopper = threading.Thread(target=worker.stop, kwargs={"grace": 10})
    stopper.start()
    finish.set()
    stopper.join()
    statuses = sorted(t.refresh().status for t in tasks)
    assert statuses.count(TaskStatus.COMPLETE) >= 1
    assert set(statuses) <= {TaskStatus.COMPLETE, TaskStatus.QUEUED}
    assert all(
        t.task.attempt == (1 if t.task.status == TaskStatus.COMPLETE else 0)
        for t in tasks
    )
    start_worker(app, concurrency=2)
    for t in tasks:
        assert t.wait(10).status == TaskStatus.COMPLETE


def test_delayed_task_waits(app: App, start_worker: Callable[..., Worker]) -> None:
    @app.task
    def noop() -> None:
        return None

    start_worker(app)
    task = noop.options(delay=1).queue().wait(15)
    assert task.status == TaskStatus.COMPLETE
    assert task.task.start_time is not None
    assert task.task.start_time >= task.task.created_at + 1


def _package(tmp_path: Path, script: str) -> Path:
    src = tmp_path / "pkg"
    src.mkdir(exist_ok=True)
    (src / "run.sh").write_text(script)
    return src


def test_code_package_gets_the_runtime_contract(
    app: App,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_OF_THE_RUNNER", "hunter2")
    script = (
        'echo "payload=$(cat "$PAYLOAD_FILE")"\n'
        'echo "id=$TASK_ID dir_ok=$([ "$TASK_DIR" = "$6" ] && echo yes)"\n'
        'echo "args=$1 $3 $5 $7"\n'
        'echo "greeting=$GREETING secret=${SECRET_OF_THE_RUNNER:-none}"\n'
        'echo "config=$(cat "$CONFIG_FILE")"\n'
        'touch "$TASK_DIR/scratch"\n'
    )
    client: Client = app.client
    client.upload_directory(
        _package(tmp_path, script),
        CodePackage(
            name="contract",
            command="sh run.sh",
            env={"GREETING": "hi"},
            config='{"c":1}',
        ),
    )
    start_worker(app)
    task = app.queue("contract", '{"n":7}').wait(15)
    assert task.status == TaskStatus.COMPLETE, task.error
    log = task.log
    assert 'payload={"n":7}' in log
    assert f"id={task.id} dir_ok=yes" in log
    assert "args=-payload -id -d -config" in log
    assert "greeting=hi secret=none" in log
    assert 'config={"c":1}' in log


def test_code_package_exit_code_is_the_status(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    app.client.upload_directory(
        _package(tmp_path, "echo failing >&2\nexit 3\n"),
        CodePackage(name="fails", command="sh run.sh"),
    )
    start_worker(app)
    task = app.queue("fails").wait(15)
    assert task.status == TaskStatus.ERROR
    assert task.error == "exited with code 3"
    assert task.log == "failing\n"


def test_code_package_timeout_kills_the_whole_tree(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    # A unique sleep length marks the child; the task may be sandboxed, so look for
    # it in the host's process list rather than trusting a pid it reports.
    marker = f"300.{os.getpid()}{time.monotonic_ns() % 10**6}"
    script = f"trap '' TERM\nsleep {marker} &\nwait\n"
    app.client.upload_directory(
        _package(tmp_path, script),
        CodePackage(name="stuck", command="sh run.sh", timeout=1),
    )
    start_worker(app)
    task = app.queue("stuck").wait(20)
    assert task.status == TaskStatus.TIMEOUT
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if (
                marker in (proc / "cmdline").read_text()
                and "zombie" not in (proc / "status").read_text().lower()
            ):
                alive.append(proc.name)
        except OSError:
            continue
    assert alive == []


def test_task_keeps_the_revision_it_was_queued_with(
    app: App, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    src = _package(tmp_path, "echo one\n")
    app.client.upload_directory(src, CodePackage(name="versioned", command="sh run.sh"))
    first = app.queue("versioned")
    (src / "run.sh").write_text("echo two\n")
    app.client.forget_code("versioned")
    app.client.upload_directory(src, CodePackage(name="versioned", command="sh run.sh"))
    app.client.forget_code("versioned")
    second = app.queue("versioned")
    start_worker(app)
    assert first.wait(15).log == "one\n"
    assert second.wait(15).log == "two\n"
    assert (first.task.code_revision, second.task.code_revision) == (1, 2)


def test_a_task_queues_children_linked_to_it(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    @app.task
    def slice_work(total: int) -> int:
        payloads = [
            json.dumps({"args": [start, min(start + 10, total)]})
            for start in range(0, total, 10)
        ]
        return len(workhorse.current_task().queue_children("process_slice", payloads))

    @app.task
    def process_slice(start: int, end: int) -> int:
        return end - start

    start_worker(app)
    master = slice_work.queue(35).wait(10)
    assert master.result == 4
    children = [t for _, t in app.client.list(parent_id=master.id)]
    assert len(children) == 4
    for child in children:
        app.get_task(child.id).wait(10)
    assert master.children() == {"complete": 4}
    assert sorted(
        int(c.result or 0) for c in (app.get_task(c.id).task for c in children)
    ) == [5, 10, 10, 10]


def test_fan_in_runs_once_after_every_child_finished(
    app: App, start_worker: Callable[..., Worker]
) -> None:
    summaries: list[dict[str, object]] = []

    @app.task
    def master(n: int) -> None:
        payloads = [json.dumps({"args": [i]}) for i in range(n)]
        workhorse.current_task().queue_children("child", payloads, then="gather")

    @app.task(retries=1)
    def child(i: int) -> int:
        if i == 0:
            raise ValueError("the first child fails twice")
        return i

    @app.task
    def gather(parent_id: str, children: dict[str, int]) -> None:
        summaries.append({"parent": parent_id, "children": children})

    start_worker(app)
    m = master.queue(5).wait(10)
    hooks: list[object] = []
    deadline = time.monotonic() + 20
    while not hooks and time.monotonic() < deadline:
        hooks = [t for _, t in app.client.list(code_name="gather")]
        time.sleep(0.05)
    (hook,) = hooks
    assert app.get_task(hook.id).wait(10).status == TaskStatus.COMPLETE
    assert summaries == [{"parent": m.id, "children": {"complete": 4, "error": 1}}]


def test_a_failing_claim_cycle_is_tried_again_with_its_outcomes(
    app: App,
    start_worker: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected error in a cycle that records outcomes neither stops the
    runner's fetcher nor loses the outcomes it was writing."""
    from workhorse.storage.stores import TaskStore

    real = TaskStore.finish_many
    failures = {"left": 2}

    def failing(self: TaskStore, *args: object, **kwargs: object) -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected failure")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TaskStore, "finish_many", failing)

    @app.task
    def echo(n: int) -> int:
        return n

    worker = start_worker(app)
    handles = [echo.queue(n) for n in range(5)]
    results = [h.wait(20) for h in handles]
    assert failures["left"] == 0
    assert [t.status for t in results] == [TaskStatus.COMPLETE] * 5
    assert [t.result for t in results] == list(range(5))
    assert all(len(t.attempts) == 1 for t in results)
    assert worker.completer.pending() == 0
    failed = [r for r in caplog.records if getattr(r, "event", "") == "fetch_failed"]
    assert len(failed) == 2
    assert "injected failure" in (failed[0].exc_text or "")


def test_a_failing_heartbeat_does_not_stop_the_next_ones(
    app: App,
    start_worker: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workhorse.storage.stores import RunnerStore

    real = RunnerStore.heartbeat
    failures = {"left": 1}
    renewed = threading.Event()

    def failing(self: RunnerStore, *args: object, **kwargs: object) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("injected failure")
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        renewed.set()

    monkeypatch.setattr(RunnerStore, "heartbeat", failing)
    worker = start_worker(app)
    assert renewed.wait(10), "no heartbeat after the failed one"
    assert failures["left"] == 0
    assert worker.supervisor._thread is not None
    assert worker.supervisor._thread.is_alive()
