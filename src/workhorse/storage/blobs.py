"""Large code archives kept as files in a blob directory instead of database rows.

The directory is meant to be shared by every host that runs tasks (an NFS or
similar mount). Rows keep a name relative to it, so each host may mount it at a
different path. Every stored file has its own name (checksum plus a random id):
deleting one revision never touches another's file, even with equal content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from workhorse.domain.ids import new_id
from workhorse.errors import InvalidInput, NotFound

_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}-[0-9A-Za-z]+\.zip$")


class BlobStore:
    """Content files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise InvalidInput(f"not a blob name: {name!r}")
        return self.root / name

    def put(self, checksum: str, data: bytes) -> str:
        """Write `data` durably; returns its name relative to the root."""
        name = f"{checksum[:2]}/{checksum}-{new_id()}.zip"
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return name

    def get(self, name: str, checksum: str) -> bytes:
        """The file's bytes, checked against the recorded checksum.

        Raises:
            NotFound: the file is missing (directory not mounted here?).
            InvalidInput: the content does not match its checksum.
        """
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"code archive {name} is missing from the blob directory {self.root}"
            ) from None
        if hashlib.sha256(data).hexdigest() != checksum:
            raise InvalidInput(f"code archive {name} does not match its checksum")
        return data

    def delete(self, name: str) -> None:
        """Remove a file (missing is fine)."""
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()
