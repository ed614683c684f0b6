"""A model-based test of tasks: random sequences of queueing, claims, outcomes,
heartbeats, rescues and cancels against a plain in-memory model, on both backends,
with the clock injected.

Two runners claim and report, sometimes with tokens that are no longer theirs; unique
keys, priorities, delays, retries, the lease rescue, a code with a concurrency cap and
one with a rate limit all play a part. After every step each task must be where the
model says. A failure shrinks to a short sequence.
"""

from __future__ import annotations

import itertools
import tempfile
from dataclasses import dataclass, field

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.conftest import _truncate_pg
from tests.contract.conftest import run_model
from workhorse.client import Client
from workhorse.domain.task import NewTask, Outcome, TaskOptions, TaskStatus
from workhorse.settings import Settings
from workhorse.storage import Storage, open_storage

NOW = 1_800_000_000.0
LEASE = 10.0
MAX_LOST = 3
RUNNERS = ("r1", "r2")
CAP = 2  # max_concurrency of the code "capped"
RATE = 0.5  # rate_limit of the code "limited": one start every 2 s, a bucket of one
CODES = ("work", "capped", "limited")
_PROJECTS = itertools.count()


@dataclass
class Model:
    """One task as the model knows it."""

    id: str
    code: str
    order: int  # queue order
    priority: int
    run_at: float
    key: str | None
    status: str = "queued"
    token: str | None = None
    runner: str | None = None
    lease_until: float = 0.0
    attempt: int = 0
    lost: int = 0
    cancel_requested: bool = False
    old_tokens: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


def claim_key(m: Model) -> tuple[float, float, int]:
    return (-m.priority, m.run_at, m.order)


class TaskMachine(RuleBasedStateMachine):
    url: str  # set on the subclass each test makes

    def __init__(self) -> None:
        super().__init__()
        # A rescue looks at every project's tasks: each example gets an empty database.
        if self.url.startswith("sqlite"):
            self.url = f"sqlite:///{tempfile.mkdtemp(prefix='task-model-')}/w.db"
            open_storage(Settings(database_url=self.url), migrate=True).close()
        else:
            _truncate_pg(self.url)
        self.project = f"model-{next(_PROJECTS)}"
        self._open()
        self.client.register_python("work", {})
        self.client.register_python("capped", {"max_concurrency": CAP})
        self.client.register_python("limited", {"rate_limit": RATE})
        # The rate-limited code's bucket: whole starts allowed at `bucket_at`.
        self.bucket: float | None = None  # None: full (never used)
        self.bucket_at = NOW
        self.now = NOW
        self.tasks: dict[str, Model] = {}
        self.tokens = itertools.count()

    def _open(self) -> None:
        self.storage: Storage = open_storage(Settings(database_url=self.url))
        self.client = Client(self.storage, project_id=self.project)

    def teardown(self) -> None:
        self.storage.close()

    def _expect_queued(self, built: list[NewTask], ids: list[str]) -> None:
        """Check the ids answered against the model's unique keys, then record."""
        for task, answered in zip(built, ids, strict=True):
            holder = next(
                (m for m in self.tasks.values() if task.unique_key is not None
                 and m.code == task.code_name and m.key == task.unique_key and m.active),
                None,
            )  # fmt: skip
            if holder is not None:
                assert answered == holder.id, "a held unique key stored a second task"
                continue
            assert answered == task.id
            self.tasks[task.id] = Model(
                task.id,
                task.code_name,
                len(self.tasks),
                task.priority,
                self.now + task.delay,
                task.unique_key,
            )

    def _build(self, options: list[TaskOptions], code: str) -> list[NewTask]:
        return self.storage.run(
            lambda tx: [self.client.build(tx, code, "{}", o) for o in options],
            write=False,
        )

    # -- queueing -----------------------------------------------------------------

    options = st.builds(
        TaskOptions,
        priority=st.sampled_from([0, 0, 1, 2]),
        delay=st.sampled_from([0, 0, 0, 5]),
        unique_key=st.sampled_from([None, None, "a", "b"]),
    )

    codes = st.sampled_from(["work", "work", "capped", "limited"])

    @rule(option=options, code=codes)
    def queue_one(self, option: TaskOptions, code: str) -> None:
        """A single task as `Client` queues it: SQLite's intake unless it has a key;
        on PostgreSQL a keyed one in one statement first."""
        (task,) = self._build([option], code)
        if task.unique_key is None:
            self.storage.run(
                lambda tx: tx.tasks.enqueue(task, now=self.now), single_statement=True
            )
            ids = [task.id]
        else:
            holder = (
                self.storage.run(
                    lambda tx: tx.tasks.insert_unique_one(task, now=self.now),
                    single_statement=True,
                )
                if self.storage.dialect == "postgres"
                else None
            )
            ids = (
                [holder]
                if holder is not None
                else self.storage.run(
                    lambda tx: tx.tasks.insert_many([task], now=self.now)
                )
            )
        self._expect_queued([task], ids)

    @rule(options=st.lists(options, min_size=2, max_size=4), code=codes)
    def queue_batch(self, options: list[TaskOptions], code: str) -> None:
        built = self._build(options, code)
        ids = self.storage.run(lambda tx: tx.tasks.insert_many(built, now=self.now))
        self._expect_queued(built, ids)

    @initialize(
        options=st.lists(st.tuples(options, codes), min_size=2, max_size=5),
        claimed=st.integers(0, 3),
    )
    def start_busy(self, options: list[tuple[TaskOptions, str]], claimed: int) -> None:
        """A backlog, some of it already running on r1: later steps find a mix."""
        for option, code in options:
            self.queue_one(option, code)
        if claimed:
            self.claim("r1", claimed)

    # -- runners ------------------------------------------------------------------

    def _tokens(self) -> float:
        """Starts the rate-limited code's bucket allows now (whole or not)."""
        burst = max(1.0, RATE)
        if self.bucket is None:
            return burst
        return min(burst, self.bucket + max(0.0, self.now - self.bucket_at) * RATE)

    @rule(runner=st.sampled_from(RUNNERS), limit=st.integers(1, 4))
    def claim(self, runner: str, limit: int) -> None:
        due = {
            code: sorted(
                (m for m in self.tasks.values()
                 if m.code == code and m.status == "queued" and m.run_at <= self.now),
                key=claim_key,
            )
            for code in CODES
        }  # fmt: skip
        running = sum(
            1
            for m in self.tasks.values()
            if m.code == "capped" and m.status == "running"
        )
        tokens = self._tokens()
        room = {
            "work": len(due["work"]),
            "capped": min(len(due["capped"]), CAP - running),
            "limited": min(len(due["limited"]), int(tokens + 1e-6)),
        }
        token = f"tok{next(self.tokens)}"
        got = self.storage.run(
            lambda tx: tx.tasks.claim(
                runner_id=runner,
                token=token,
                cluster="default",
                project_id=self.project,
                codes=list(CODES),
                packages=False,
                limit=limit,
                lease_seconds=LEASE,
                now=self.now,
            )
        )
        # As many as there is room for, never more than a code's cap or its tokens
        # allow, each code's highest priority and oldest first; the whole batch in
        # claim order.
        assert len(got) == min(limit, sum(room.values()))
        for code in CODES:
            mine = [t.id for t in got if t.code_name == code]
            assert len(mine) <= room[code], f"{code}: {len(mine)} > {room[code]}"
            assert mine == [m.id for m in due[code][: len(mine)]], code
        ordered = sorted(got, key=lambda t: claim_key(self.tasks[t.id]))
        assert [t.id for t in got] == [t.id for t in ordered]
        started = sum(1 for t in got if t.code_name == "limited")
        if started:
            self.bucket, self.bucket_at = tokens - started, self.now
        for task in got:
            model = self.tasks[task.id]
            assert task.attempt == model.attempt + 1
            model.status, model.runner, model.lease_until = (
                "running",
                runner,
                self.now + LEASE,
            )
            if model.token is not None:
                model.old_tokens.append(model.token)
            model.token = token
            model.attempt += 1

    def _running(self) -> list[Model]:
        return sorted(
            (m for m in self.tasks.values() if m.status == "running"),
            key=lambda m: m.order,
        )

    @precondition(lambda self: self._running())
    @rule(data=st.data(), end=st.sampled_from(["complete", "error", "retry"]))
    def finish(self, data: st.DataObject, end: str) -> None:
        model = data.draw(st.sampled_from(self._running()))
        assert model.token is not None
        outcome = Outcome(
            task_id=model.id,
            lease_token=model.token,
            status=TaskStatus.COMPLETE if end == "complete" else TaskStatus.ERROR,
            retry_delay=3.0 if end == "retry" else None,
        )
        applied = self.storage.run(
            lambda tx: tx.tasks.finish_many([outcome], now=self.now)
        )
        assert applied == 1
        model.old_tokens.append(model.token)
        model.token, model.runner, model.cancel_requested = None, None, False
        if end == "retry":
            model.status, model.run_at = "queued", self.now + 3.0
        else:
            model.status = end

    def _with_old_tokens(self, running: bool = False) -> list[Model]:
        return sorted(
            (
                m
                for m in self.tasks.values()
                if m.old_tokens and (m.status == "running" or not running)
            ),
            key=lambda m: m.order,
        )

    @precondition(lambda self: self._with_old_tokens())
    @rule(data=st.data(), running=st.booleans())
    def a_stale_outcome_changes_nothing(
        self, data: st.DataObject, running: bool
    ) -> None:
        """A runner reporting under a token the task no longer has (it was rescued,
        finished or claimed again meanwhile), the task running again elsewhere
        when `running` can be had."""
        model = data.draw(
            st.sampled_from(self._with_old_tokens(running) or self._with_old_tokens())
        )
        token = data.draw(st.sampled_from(model.old_tokens))
        outcome = Outcome(
            task_id=model.id, lease_token=token, status=TaskStatus.COMPLETE
        )
        applied = self.storage.run(
            lambda tx: tx.tasks.finish_many([outcome], now=self.now)
        )
        assert applied == 0

    @rule(runner=st.sampled_from(RUNNERS))
    def heartbeat(self, runner: str) -> None:
        mine = [m for m in self._running() if m.runner == runner]
        held = self.storage.run(
            lambda tx: tx.tasks.heartbeat(
                runner_id=runner,
                task_ids=[m.id for m in mine],
                lease_seconds=LEASE,
                now=self.now,
            )
        )
        assert sorted(held) == sorted((m.id, m.token, m.cancel_requested) for m in mine)
        for m in mine:
            m.lease_until = self.now + LEASE

    @rule()
    def rescue(self) -> None:
        expired = [m for m in self._running() if m.lease_until < self.now]
        rescued = self.storage.run(
            lambda tx: tx.tasks.rescue_expired(
                max_lost=MAX_LOST, limit=100, now=self.now
            )
        )
        assert sorted(r.task_id for r in rescued) == sorted(m.id for m in expired)
        for m in expired:
            assert m.token is not None
            m.old_tokens.append(m.token)
            m.token, m.runner = None, None
            if m.cancel_requested:
                m.status = "cancelled"
            elif m.lost + 1 >= MAX_LOST:
                m.status = "killed"
            else:
                m.status = "queued"
            m.lost += 1
            m.cancel_requested = False

    @precondition(lambda self: self.tasks)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        model = data.draw(
            st.sampled_from(sorted(self.tasks.values(), key=lambda m: m.order))
        )
        changed = self.storage.run(
            lambda tx: tx.tasks.cancel(self.project, model.id, now=self.now)
        )
        assert changed == model.active
        if model.status == "queued":
            model.status = "cancelled"
        elif model.status == "running":
            model.cancel_requested = True

    @rule(seconds=st.sampled_from([1, 4, 11, 31]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def restart(self) -> None:
        """Close every connection and open the database again."""
        self.storage.close()
        self._open()

    # -- after every step -------------------------------------------------------------

    @invariant()
    def every_task_is_where_the_model_says(self) -> None:
        stored = {
            t.id: t
            for t in self.storage.run(
                lambda tx: tx.tasks.get_many(self.project, list(self.tasks)),
                write=False,
            )
        }
        assert set(stored) == set(self.tasks)
        for model in self.tasks.values():
            task = stored[model.id]
            assert (task.status.value, task.attempt, task.lost_count) == (
                model.status,
                model.attempt,
                model.lost,
            ), model.id
            assert task.cancel_requested == model.cancel_requested
            assert task.lease_token == model.token
            assert task.unique_key == model.key


@pytest.mark.slow
def test_tasks_behave_like_the_model(database_url: str) -> None:
    run_model(TaskMachine, database_url, examples=150)
