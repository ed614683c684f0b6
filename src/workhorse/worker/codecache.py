"""Runner-side cache of unpacked code revisions, keyed by checksum.

A revision's archive comes from its database row, or from the blob directory
for large ones (checked against the recorded checksum). It is unpacked once per
checksum per host and then shared, read-only, by every task of that revision.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from workhorse.client import unpack_revision
from workhorse.domain.limits import decode_code_options
from workhorse.domain.task import Task
from workhorse.errors import InvalidInput, NotFound
from workhorse.storage import Storage
from workhorse.storage.blobs import BlobStore
from workhorse.worker.runners.process import Revision


class CodeCache:
    """Fetches a revision once, unpacks it once per checksum."""

    def __init__(self, storage: Storage, root: Path) -> None:
        self.storage = storage
        # Absolute: launchers start tasks from other directories.
        self.root = root.absolute()
        blob_dir = storage.settings.blob_dir
        self.blobs = BlobStore(blob_dir) if blob_dir is not None else None
        self._known: dict[tuple[str, str, int], Revision] = {}
        self._lock = threading.Lock()

    def revision(self, task: Task) -> Revision:
        """The unpacked revision the task was queued with."""
        key = (task.project_id, task.code_name, task.code_revision or 0)
        with self._lock:
            hit = self._known.get(key)
        if hit is not None:
            return hit
        row = self.storage.run(lambda tx: tx.codes.get_revision(*key), write=False)
        if row is None:
            raise NotFound(f"revision {key[2]} of code {task.code_name!r} is gone")
        target = self.root / row["checksum"]
        if not target.exists():
            # Files inside are world-readable for the sandbox user; the root is
            # private so that other users of the host cannot reach them.
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            unpack_revision(self._archive(row), target)
        found = Revision(
            code_dir=target,
            command=row["command"],
            runtime=row["runtime"],
            options=decode_code_options(row["options"]),
        )
        with self._lock:
            self._known[key] = found
        return found

    def _archive(self, row: dict[str, Any]) -> bytes:
        if row.get("archive") is not None:
            return bytes(row["archive"])
        name = str(row.get("blob_path") or "")
        if self.blobs is None:
            raise InvalidInput(
                f"revision {row['revision']} is kept in the blob directory, but this "
                "runner has none configured (set WORKHORSE_BLOB_DIR)"
            )
        return self.blobs.get(name, str(row["checksum"]))
