"""FanIn: queues a parent's follow-up task once all of its children have finished."""

from __future__ import annotations

import json
import logging

from workhorse.client import Client
from workhorse.domain.task import TaskOptions, python_payload
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

log = logging.getLogger(__name__)
BATCH = 100


class FanIn:
    """Leader-only: fires due fan-ins, each exactly once (marked in the same transaction)."""

    period = 0.5

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def run_once(self, now: float | None = None) -> int:
        """Fire every due fan-in; returns how many fired."""
        return self.storage.run(self._fire_due, retry_for=0)

    def _fire_due(self, tx: Transaction) -> int:
        fired = 0
        for fan in tx.fanins.due(limit=BATCH):
            client = Client(self.storage, project_id=fan["project_id"])
            children = tx.tasks.children_summary(fan["parent_id"])
            summary = {"parent_id": fan["parent_id"], "children": children}
            code = tx.codes.get(fan["project_id"], fan["code_name"])
            if code is None:
                log.warning(
                    "fan-in of %s names unknown code %s",
                    fan["parent_id"],
                    fan["code_name"],
                    extra={"event": "fanin_unknown_code"},
                )
                tx.fanins.mark_fired(fan["parent_id"], "")
                continue
            payload = (
                python_payload([], summary)
                if code["kind"] == "python"
                else json.dumps(summary)
            )
            task = client.build(
                tx,
                fan["code_name"],
                payload,
                TaskOptions(cluster=fan["cluster"], label=f"after {fan['parent_id']}"),
            )
            if tx.fanins.mark_fired(fan["parent_id"], task.id):
                tx.tasks.insert_many([task])
                fired += 1
        return fired
