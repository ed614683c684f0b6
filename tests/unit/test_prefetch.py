"""Prefetch follows the tasks' run time unless fixed."""

from __future__ import annotations

from workhorse.worker.fetcher import Prefetch


def test_fixed_prefetch_is_kept() -> None:
    assert Prefetch(8, fixed=3).capacity() == 11


def test_short_tasks_claim_far_ahead_up_to_the_cap() -> None:
    p = Prefetch(8)
    for _ in range(200):
        p.observe(0.00005)
    assert p.capacity() == 8 + Prefetch.MAX


def test_long_tasks_claim_one_ahead() -> None:
    p = Prefetch(8)
    for _ in range(200):
        p.observe(5.0)
    assert p.capacity() == 9


def test_before_any_task_ran_one_per_thread() -> None:
    assert Prefetch(4).capacity() == 8
