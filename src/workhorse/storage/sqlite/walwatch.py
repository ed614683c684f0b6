"""Notice at once when another process commits to a SQLite database (Linux inotify).

SQLite has no NOTIFY. Workhorse's writers open `<db>-notify` after every commit
(`signal_commit`), so a watch on the database's directory wakes a waiting listener
within microseconds instead of at its next poll of `PRAGMA data_version`. Other
writers (the sqlite3 shell, a script) only append frames to `<db>-wal`: those
events say a commit is on its way, and the caller then polls until it shows. The
directory is watched rather than the files because SQLite deletes the WAL when the
last connection closes and creates it again on the next write.

Commit signals and WAL writes arrive on two inotify descriptors. A busy writer
appends frames many times a millisecond; a caller that already polls because of
them waits on the signals alone and collects the writes with `writes()`, instead
of waking for every frame.

Where inotify is missing (not Linux, or the watch limit is reached) `open_wal_watch`
returns None and the caller keeps polling.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
from pathlib import Path

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_OPEN = 0x00000020
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
# What `WalWatch.wait` saw.
COMMITTED = 2  # a Workhorse writer committed
WRITING = 1  # frames were appended to the WAL by some writer
NOTHING = 0


def signal_path(db_path: Path) -> Path:
    """The file a writer opens after each commit."""
    return db_path.with_name(db_path.name + "-notify")


def signal_commit(path: Path) -> None:
    """Open and close the signal file (creating it if needed).

    Opening is an inotify event that writes nothing: touching the file (as
    before) changed its inode, and the next commit's fsync then had to write that
    to the file system's journal as well (~9 us a commit here). Listeners still
    take a touch for a signal.
    Best effort: the commit has happened whatever this does, and listeners that
    miss the signal still see the WAL frames.
    """
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            path.touch()
    except OSError:
        pass


class WalWatch:
    """inotify watches on the directory of one database, filtered to its files."""

    def __init__(
        self, commits_fd: int, writes_fd: int, signal_name: bytes, wal_name: bytes
    ) -> None:
        self._commits_fd = commits_fd  # the signal file touched or created
        self._writes_fd = writes_fd  # the WAL file appended to
        self._signal_name = signal_name
        self._wal_name = wal_name

    def wait(self, timeout: float, *, writes: bool = True) -> int:
        """Block up to `timeout` seconds, returning early on an event: COMMITTED,
        WRITING (frames appended, commit not signalled yet) or NOTHING.

        `writes=False` returns early on commit signals only (see `writes()`).
        """
        fds = [self._commits_fd, self._writes_fd] if writes else [self._commits_fd]
        ready, _, _ = select.select(fds, [], [], timeout)
        seen = NOTHING
        if self._commits_fd in ready and self._read(
            self._commits_fd, self._signal_name
        ):
            seen = COMMITTED
        if self._writes_fd in ready and self._read(self._writes_fd, self._wal_name):
            seen = max(seen, WRITING)
        return seen

    def drain_commits(self) -> None:
        """Forget the commit signals queued so far (no waiting)."""
        self._read(self._commits_fd, self._signal_name)

    def writes(self) -> bool:
        """Whether frames were appended to the WAL since last asked (no waiting)."""
        return self._read(self._writes_fd, self._wal_name)

    @staticmethod
    def _read(fd: int, name: bytes) -> bool:
        """Drain `fd`; whether any event named `name` (or an overflow) was queued."""
        try:
            data = os.read(fd, 64 * 1024)
        except BlockingIOError:
            return False
        offset = 0
        while offset + _EVENT.size <= len(data):
            _, mask, _, length = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            if (
                mask & IN_Q_OVERFLOW
                or data[start : start + length].rstrip(b"\0") == name
            ):
                return True
            offset = start + length
        return False

    def close(self) -> None:
        """Drop the watches."""
        os.close(self._commits_fd)
        os.close(self._writes_fd)


def open_wal_watch(db_path: Path) -> WalWatch | None:
    """A watch on `db_path`'s commits, or None where inotify is not available."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        init, add = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError):
        return None
    directory = os.fsencode(db_path.resolve().parent)
    fds: list[int] = []
    # Opening the signal file is an IN_OPEN event (touching it, IN_ATTRIB); appending
    # to the WAL, IN_MODIFY. SQLite opens its own files only as connections open.
    for mask in (IN_OPEN | IN_ATTRIB | IN_CREATE, IN_MODIFY):
        fd = init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd >= 0:
            fds.append(fd)
        if fd < 0 or add(fd, directory, mask) < 0:
            for opened in fds:
                os.close(opened)
            return None
    commits_fd, writes_fd = fds
    return WalWatch(
        commits_fd,
        writes_fd,
        os.fsencode(signal_path(db_path).name),
        os.fsencode(db_path.name) + b"-wal",
    )
