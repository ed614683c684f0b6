"""Runner-side cache of unpacked code revisions, keyed by checksum."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from workhorse.client import unpack_revision
from workhorse.domain.task import Task
from workhorse.errors import NotFound
from workhorse.storage import Storage


class CodeCache:
    """Fetches a revision from the database once, unpacks it once per checksum."""

    def __init__(self, storage: Storage, root: Path) -> None:
        self.storage = storage
        self.root = root
        self._known: dict[tuple[str, str, int], tuple[Path, str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def directory(self, task: Task) -> tuple[Path, str, dict[str, Any]]:
        """(code dir, command, options) for the task's revision."""
        key = (task.project_id, task.code_name, task.code_revision or 0)
        with self._lock:
            hit = self._known.get(key)
        if hit is not None:
            return hit
        row = self.storage.run(
            lambda tx: tx.codes.get_revision(task.project_id, task.code_name, key[2]), write=False
        )
        if row is None:
            raise NotFound(f"revision {key[2]} of code {task.code_name!r} is gone")
        target = self.root / row["checksum"]
        if not target.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            unpack_revision(bytes(row["archive"]), target)
        found = (target, row["command"], json.loads(row["options"] or "{}"))
        with self._lock:
            self._known[key] = found
        return found
