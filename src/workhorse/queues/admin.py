"""Queue management: create, update, read, list and delete queues, with their
subscribers and alerts (IronMQ v3 queue endpoints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from workhorse.client import DEFAULT_PROJECT
from workhorse.domain.ids import new_id
from workhorse.domain.message import validate_queue_name
from workhorse.domain.queue import (
    PUSH_NO_ALERTS,
    Alert,
    QueueInfo,
    QueueSettings,
    add_subscribers,
    check_queue_links,
    merge_alerts,
    parse_alert,
    parse_settings,
    parse_subscriber,
    remove_alerts,
    remove_subscribers,
)
from workhorse.errors import InvalidInput, NotFound
from workhorse.queues.refusal import QUEUE_NOT_FOUND
from workhorse.settings import Settings
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


class QueueAdmin:
    """Queue settings within one project. Each call is one transaction; changes to
    a queue's settings lock it, so concurrent updates do not lose each other."""

    def __init__(
        self,
        storage: Storage,
        *,
        project_id: str = DEFAULT_PROJECT,
        settings: Settings | None = None,
    ) -> None:
        self.storage = storage
        self.settings = settings or storage.settings
        self.project_id = project_id

    def create_queue(
        self,
        name: str,
        settings: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
    ) -> QueueInfo:
        """Create a queue, or update it if it exists (IronMQ's PUT).

        On an existing queue, alerts given replace the current ones.
        """
        name = validate_queue_name(name)

        def work(tx: Transaction) -> QueueInfo:
            if tx.messages.lock_queue(self.project_id, name) is None:
                fresh = parse_settings(settings, current=None, new_id=new_id)
                check_queue_links(name, fresh)
                created = tx.messages.create_queue(
                    self.project_id, name, new_id(), fresh, now=now
                )
                if created is not None:
                    return created
            return self._update(tx, name, settings, replace_alerts=True, now=now)

        return self.storage.run(work)

    def update_queue(
        self,
        name: str,
        changes: Mapping[str, Any] | None,
        *,
        replace_alerts: bool = False,
        now: float | None = None,
    ) -> QueueInfo:
        """Change some settings (IronMQ's PATCH).

        Alerts given are added to the current ones unless `replace_alerts`.
        """
        name = validate_queue_name(name)
        return self.storage.run(
            lambda tx: self._update(
                tx, name, changes, replace_alerts=replace_alerts, now=now
            )
        )

    def _update(
        self,
        tx: Transaction,
        name: str,
        changes: Mapping[str, Any] | None,
        *,
        replace_alerts: bool,
        now: float | None,
    ) -> QueueInfo:
        current = self._locked(tx, name)
        settings = parse_settings(
            changes,
            current=current.settings,
            new_id=new_id,
            replace_alerts=replace_alerts,
        )
        return self._store_settings(tx, name, settings, now=now)

    def _locked(self, tx: Transaction, name: str) -> QueueInfo:
        queue = tx.messages.lock_queue(self.project_id, name)
        if queue is None:
            raise NotFound(QUEUE_NOT_FOUND)
        return queue

    def _store_settings(
        self,
        tx: Transaction,
        name: str,
        settings: QueueSettings,
        *,
        now: float | None = None,
    ) -> QueueInfo:
        check_queue_links(name, settings)
        updated = tx.messages.update_queue(self.project_id, name, settings, now=now)
        if updated is None:
            raise NotFound(QUEUE_NOT_FOUND)
        return updated

    def _change(self, name: str, change: Any) -> QueueInfo:
        """Apply `change(settings) -> settings` under the queue's lock."""
        name = validate_queue_name(name)

        def work(tx: Transaction) -> QueueInfo:
            current = self._locked(tx, name)
            return self._store_settings(tx, name, change(current.settings))

        return self.storage.run(work)

    def get_queue(self, name: str, *, now: float | None = None) -> QueueInfo:
        """A queue with its `size` and `total_messages`."""
        name = validate_queue_name(name)

        def work(tx: Transaction) -> QueueInfo:
            queue = tx.messages.get_queue(self.project_id, name)
            if queue is None:
                raise NotFound(QUEUE_NOT_FOUND)
            return replace(queue, size=tx.messages.size(self.project_id, name, now=now))

        return self.storage.run(work, write=False)

    def delete_queue(self, name: str) -> None:
        """Delete a queue and every message in it."""
        name = validate_queue_name(name)
        if not self.storage.run(
            lambda tx: tx.messages.delete_queue(self.project_id, name)
        ):
            raise NotFound(QUEUE_NOT_FOUND)

    def list_queues(
        self,
        *,
        prefix: str | None = None,
        previous: str | None = None,
        per_page: int = DEFAULT_PER_PAGE,
    ) -> list[QueueInfo]:
        """Queues in name order after `previous` (need not exist), with `prefix`."""
        if (
            isinstance(per_page, bool)
            or not isinstance(per_page, int)
            or not 1 <= per_page <= MAX_PER_PAGE
        ):
            raise InvalidInput(
                f"per_page must be a whole number from 1 to {MAX_PER_PAGE}"
            )
        return self.storage.run(
            lambda tx: tx.messages.list_queues(
                self.project_id, prefix=prefix, previous=previous, limit=per_page
            ),
            write=False,
        )

    def add_subscribers(
        self, name: str, subscribers: Sequence[Mapping[str, Any]]
    ) -> QueueInfo:
        """Add push subscribers (one with the same name is updated)."""
        new = [parse_subscriber(s) for s in subscribers]
        return self._change(name, lambda s: add_subscribers(s, new, replace_all=False))

    def replace_subscribers(
        self, name: str, subscribers: Sequence[Mapping[str, Any]]
    ) -> QueueInfo:
        """Replace the whole list of push subscribers."""
        new = [parse_subscriber(s) for s in subscribers]
        return self._change(name, lambda s: add_subscribers(s, new, replace_all=True))

    def remove_subscribers(self, name: str, names: Sequence[str]) -> QueueInfo:
        """Remove push subscribers by name (a push queue keeps at least one)."""
        return self._change(name, lambda s: remove_subscribers(s, names))

    def add_alerts(self, name: str, alerts: Sequence[Mapping[str, Any]]) -> QueueInfo:
        """Add alerts; one duplicating an existing alert is refused."""
        new = [parse_alert(a, new_id) for a in alerts]
        return self._change(
            name, lambda s: _with_alerts(s, merge_alerts(s.alerts, new))
        )

    def replace_alerts(
        self, name: str, alerts: Sequence[Mapping[str, Any]]
    ) -> QueueInfo:
        """Replace every alert."""
        new = [parse_alert(a, new_id) for a in alerts]
        return self._change(name, lambda s: _with_alerts(s, merge_alerts((), new)))

    def remove_alerts(self, name: str, ids: Sequence[str]) -> QueueInfo:
        """Remove alerts by id."""
        return self._change(name, lambda s: remove_alerts(s, ids))


def _with_alerts(settings: QueueSettings, alerts: Sequence[Alert]) -> QueueSettings:
    if settings.is_push and alerts:
        raise InvalidInput(PUSH_NO_ALERTS)
    return replace(settings, alerts=tuple(alerts))
