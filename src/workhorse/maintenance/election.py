"""Leader election through the database: one holder of a named lease at a time."""

from __future__ import annotations

from workhorse.storage import Storage


class Election:
    """Takes and renews the `maintenance` leadership lease."""

    def __init__(
        self, storage: Storage, holder: str, *, ttl: float, name: str = "maintenance"
    ) -> None:
        self.storage = storage
        self.holder = holder
        self.ttl = ttl
        self.name = name
        self.is_leader = False

    def run_once(self, now: float | None = None) -> bool:
        """Try to lead (or keep leading); returns whether this process leads."""
        self.is_leader = self.storage.run(
            lambda tx: tx.leaders.acquire(
                self.name, self.holder, ttl=self.ttl, now=now
            ),
            retry_for=0,
        )
        return self.is_leader

    def resign(self) -> None:
        """Step down so another process can lead at once."""
        if self.is_leader:
            self.storage.run(
                lambda tx: tx.leaders.resign(self.name, self.holder), retry_for=1
            )
            self.is_leader = False
