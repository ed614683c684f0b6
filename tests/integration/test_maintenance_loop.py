"""The maintenance loop keeps its services running when one of them fails."""

from __future__ import annotations

import threading

import pytest

from workhorse.maintenance.election import Election
from workhorse.maintenance.loop import MaintenanceLoop
from workhorse.storage import Storage


class Failing:
    period = 0.0

    def __init__(self) -> None:
        self.calls = 0

    def run_once(self, now: float | None = None) -> int:
        self.calls += 1
        raise RuntimeError("injected failure")


class Counting:
    period = 0.0

    def __init__(self) -> None:
        self.calls = 0

    def run_once(self, now: float | None = None) -> int:
        self.calls += 1
        return 0


def test_a_failing_service_neither_stops_the_others_nor_itself(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    failing, counting = Failing(), Counting()
    loop = MaintenanceLoop(Election(storage, "r1", ttl=30), [failing, counting])
    loop.run_once()
    loop.run_once()
    assert (failing.calls, counting.calls) == (2, 2)
    failed = [
        r for r in caplog.records if getattr(r, "event", "") == "maintenance_failed"
    ]
    assert len(failed) == 2
    assert "Failing" in failed[0].getMessage()
    assert "injected failure" in (failed[0].exc_text or "")


def test_the_loop_outlives_a_failing_election(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyElection(Election):
        failed = False

        def run_once(self, now: float | None = None) -> bool:
            if not self.failed:
                self.failed = True
                raise RuntimeError("injected failure")
            return super().run_once(now)

    ran = threading.Event()

    class Signalling(Counting):
        def run_once(self, now: float | None = None) -> int:
            ran.set()
            return super().run_once(now)

    loop = MaintenanceLoop(FlakyElection(storage, "r1", ttl=30), [Signalling()])
    loop.start()
    try:
        assert ran.wait(10), "no service ran after the failed election"
    finally:
        loop.stop()
    failed = [
        r for r in caplog.records if getattr(r, "event", "") == "maintenance_failed"
    ]
    assert len(failed) == 1
