"""Notice at once when another process commits to a SQLite database (Linux inotify).

SQLite has no NOTIFY. Workhorse's writers read a byte of `<db>-notify` after every
commit (`CommitSignal`), so a watch on that file wakes a waiting listener
within microseconds instead of at its next poll of `PRAGMA data_version`. Other
writers (the sqlite3 shell, a script) only append frames to `<db>-wal`: those
events say a commit is on its way, and the caller then polls until it shows. The
WAL is watched through its directory because SQLite deletes it when the last
connection closes and creates it again on the next write.

A read is the cheapest event there is: it changes nothing on disk. Touching the
file (as writers once did, and may still) changed its inode, which the next
durable commit's fsync then wrote to the file system's journal as well; opening
it cost as much. A read of the directory's files would be no signal at all (SQLite
reads its own files all the time), so the signal file itself is watched, and the
watch renewed when the file is created again.

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
import functools
import os
import select
import struct
import time
from collections.abc import Callable
from pathlib import Path

IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CREATE = 0x00000100
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
# What `WalWatch.wait` saw.
COMMITTED = 2  # a Workhorse writer committed
WRITING = 1  # frames were appended to the WAL by some writer
NOTHING = 0


def signal_path(db_path: Path) -> Path:
    """The file a writer reads after each commit."""
    return db_path.with_name(db_path.name + "-notify")


def _open_signal_file(path: Path) -> int:
    """An fd on the signal file, created if missing and holding one byte (a read
    of an empty file reads nothing and is no event)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    if os.fstat(fd).st_size == 0:
        os.pwrite(fd, b"\n", 0)
    return fd


class CommitSignal:
    """A writer's end: `send()` after each commit.

    Best effort: the commit has happened whatever this does, and listeners that
    miss the signal still see the WAL frames.
    """

    RECHECK_SECONDS = 1.0  # how often to make sure the file is still the one we hold

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._pid = -1
        self._checked = 0.0

    def send(self) -> None:
        """Read the signal file's byte (an IN_ACCESS event for its watchers)."""
        try:
            if self._fd < 0 or self._pid != os.getpid() or self._stale():
                self._reopen()
            os.pread(self._fd, 1, 0)
        except OSError:
            self._close()

    def _stale(self) -> bool:
        """Whether the file was replaced (deleted and created again) meanwhile."""
        now = time.monotonic()
        if now - self._checked < self.RECHECK_SECONDS:
            return False
        self._checked = now
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True

    def _reopen(self) -> None:
        if self._pid == os.getpid():
            self._close()
        self._fd = _open_signal_file(self.path)
        self._pid = os.getpid()
        self._checked = time.monotonic()

    def _close(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = -1

    def close(self) -> None:
        """Let the file go."""
        self._close()


class WalWatch:
    """inotify watches on one database's commit signals and WAL writes."""

    def __init__(
        self,
        commits_fd: int,
        writes_fd: int,
        signal: Path,
        wal_name: bytes,
        add_watch: Callable[[int, bytes, int], int],
    ) -> None:
        self._commits_fd = commits_fd  # the signal file read, touched or created
        self._writes_fd = writes_fd  # the WAL file appended to
        self._signal = signal
        self._signal_name = os.fsencode(signal.name)
        self._wal_name = wal_name
        self._add_watch = add_watch
        self._file_wd = -1
        self._watch_file()

    def _watch_file(self) -> None:
        """Watch the signal file itself for reads (creating it if need be)."""
        with contextlib.suppress(OSError):
            os.close(_open_signal_file(self._signal))
        self._file_wd = self._add_watch(
            self._commits_fd, os.fsencode(self._signal), IN_ACCESS
        )

    def wait(self, timeout: float, *, writes: bool = True) -> int:
        """Block up to `timeout` seconds, returning early on an event: COMMITTED,
        WRITING (frames appended, commit not signalled yet) or NOTHING.

        `writes=False` returns early on commit signals only (see `writes()`).
        """
        fds = [self._commits_fd, self._writes_fd] if writes else [self._commits_fd]
        ready, _, _ = select.select(fds, [], [], timeout)
        seen = NOTHING
        if self._commits_fd in ready and self._read_commits():
            seen = COMMITTED
        if self._writes_fd in ready and self._read_writes():
            seen = max(seen, WRITING)
        return seen

    def drain_commits(self) -> None:
        """Forget the commit signals queued so far (no waiting)."""
        self._read_commits()

    def writes(self) -> bool:
        """Whether frames were appended to the WAL since last asked (no waiting)."""
        return self._read_writes()

    def _read_commits(self) -> bool:
        """Drain the commit signals: a read of the signal file, or a touch or a
        creation of it (which also renews the watch on the file)."""
        seen = False
        renew = False
        for wd, mask, name in _events(self._commits_fd):
            if mask & IN_Q_OVERFLOW:
                seen = True
            elif wd == self._file_wd:
                if mask & IN_IGNORED:  # the file was deleted
                    self._file_wd = -1
                else:
                    seen = True
            elif name == self._signal_name:
                seen = True
                renew = renew or bool(mask & IN_CREATE)
        if renew:
            self._watch_file()
        return seen

    def _read_writes(self) -> bool:
        return any(
            mask & IN_Q_OVERFLOW or name == self._wal_name
            for _, mask, name in _events(self._writes_fd)
        )

    def close(self) -> None:
        """Drop the watches."""
        os.close(self._commits_fd)
        os.close(self._writes_fd)


def _events(fd: int) -> list[tuple[int, int, bytes]]:
    """Drain `fd` (no waiting): its queued events as (watch, mask, name)."""
    try:
        data = os.read(fd, 64 * 1024)
    except BlockingIOError:
        return []
    found = []
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        found.append((wd, mask, data[start : start + length].rstrip(b"\0")))
        offset = start + length
    return found


@functools.cache
def _inotify() -> tuple[Callable[..., int], Callable[..., int]] | None:
    """libc's inotify_init1 and inotify_add_watch, or None without them.

    Looked up once per process, first among the symbols the process has loaded:
    `ctypes.util.find_library`, the fallback, runs `ldconfig -p` in a child
    process (~20 ms, at a runner's start and at a writer's first wait).
    """
    try:
        return _inotify_in(ctypes.CDLL(None, use_errno=True))
    except (OSError, AttributeError):
        pass
    try:
        return _inotify_in(ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True))
    except (OSError, AttributeError):
        return None


def _inotify_in(
    libc: ctypes.CDLL,
) -> tuple[Callable[..., int], Callable[..., int]]:
    return libc.inotify_init1, libc.inotify_add_watch


def open_wal_watch(db_path: Path) -> WalWatch | None:
    """A watch on `db_path`'s commits, or None where inotify is not available."""
    functions = _inotify()
    if functions is None:
        return None
    init, add = functions
    directory = os.fsencode(db_path.resolve().parent)
    fds: list[int] = []
    # Reads of the signal file are watched on the file itself (added by WalWatch);
    # on the directory: its creation, and touches from writers that still touch it.
    # Appending to the WAL is IN_MODIFY.
    for mask in (IN_ATTRIB | IN_CREATE, IN_MODIFY):
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
        signal_path(db_path.resolve()),
        os.fsencode(db_path.name) + b"-wal",
        add,
    )
