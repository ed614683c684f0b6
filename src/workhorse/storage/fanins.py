"""FanInStore: follow-up tasks queued when all children of a parent have finished."""

from __future__ import annotations

from typing import Any

from workhorse.storage.stores import _Store


class FanInStore(_Store):
    """Fan-in records."""

    def insert(
        self,
        *,
        parent_id: str,
        project_id: str,
        code_name: str,
        cluster: str,
        now: float | None = None,
    ) -> None:
        """Queue `code_name` once every child of `parent_id` is final."""
        self.conn.execute(
            self.q["fanins.insert"],
            {
                "parent_id": parent_id,
                "project_id": project_id,
                "code_name": code_name,
                "cluster": cluster,
                "now": now,
            },
        )

    def due(self, *, limit: int) -> list[dict[str, Any]]:
        """Unfired fan-ins whose children are all final, locked for this transaction."""
        return [
            dict(r) for r in self.conn.fetch_all(self.q["fanins.due"], {"limit": limit})
        ]

    def mark_fired(self, parent_id: str, task_id: str) -> bool:
        """Record the follow-up task; False if another process fired it first."""
        return bool(
            self.conn.execute(
                self.q["fanins.mark_fired"],
                {"parent_id": parent_id, "task_id": task_id},
            )
        )

    def get(self, parent_id: str) -> dict[str, Any] | None:
        """The fan-in of a parent, if any."""
        row = self.conn.fetch_one(self.q["fanins.get"], {"parent_id": parent_id})
        return None if row is None else dict(row)
