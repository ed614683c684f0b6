"""Runs the leader-only services on their periods in one background thread."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Protocol

from workhorse.errors import StorageUnavailable
from workhorse.maintenance.election import Election

log = logging.getLogger(__name__)
TICK_SECONDS = 0.5


class Service(Protocol):
    """A periodic leader-only job."""

    period: float

    def run_once(self, now: float | None = None) -> int:
        """One pass; returns how much it did."""
        ...


class MaintenanceLoop:
    """Elects a leader; the leader runs each service every `period` seconds."""

    def __init__(self, election: Election, services: list[Service]) -> None:
        self.election = election
        self.services = services
        self._next = [0.0] * len(services)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> None:
        """One tick: renew leadership, run what is due."""
        try:
            if not self.election.run_once():
                return
            now = time.monotonic()
            for i, service in enumerate(self.services):
                if now >= self._next[i]:
                    self._run_service(service)  # StorageUnavailable: next tick
                    self._next[i] = now + service.period
        except StorageUnavailable as exc:
            log.warning(
                "maintenance skipped: %s", exc, extra={"event": "maintenance_skipped"}
            )

    @staticmethod
    def _run_service(service: Service) -> None:
        """One pass of a service; an unexpected error is logged, and neither stops
        the others nor the loop (the service runs again at its next period)."""
        try:
            service.run_once()
        except StorageUnavailable:
            raise
        except Exception:
            log.exception(
                "maintenance service %s failed",
                type(service).__name__,
                extra={"event": "maintenance_failed"},
            )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the election itself failed: try again next tick
                log.exception(
                    "maintenance tick failed", extra={"event": "maintenance_failed"}
                )
            self._stop.wait(TICK_SECONDS)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(
            target=self._loop, name="maintenance", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop and resign leadership."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(StorageUnavailable):
            self.election.resign()
