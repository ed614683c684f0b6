"""A FUSE filesystem that loses unsynced writes on command: a power cut, for tests.

Files live in a backing directory. Data written to them is held in memory, page by
page, until the file is fsynced; `cut_power()` drops whatever was not synced, as a
machine that loses power drops its page cache. Metadata changes (create, rename,
unlink, truncate) reach the backing directory at once. Files named `*-shm`
(SQLite's shared-memory index, which SQLite rebuilds from the WAL after a crash)
go straight through, so that they can be mapped into memory; every other file is
opened with direct I/O, so that the kernel caches nothing that a cut should drop.

    with lazy_mount(backing, mountpoint) as mount:
        ...  # write through mountpoint (from other processes), kill the writers
        mount.cut_power()
    # backing now holds what a machine would find after the power came back
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mfusepy

PAGE = 4096


class _Unsynced:
    """One file's writes since its last fsync: pages by index, and its length."""

    def __init__(self, length: int) -> None:
        self.pages: dict[int, bytearray] = {}
        self.length = length


class LazyFS(mfusepy.Operations):  # type: ignore[misc]
    """Holds writes in memory until fsync (see the module notes)."""

    use_ns = True

    def __init__(self, backing: Path) -> None:
        self.backing = backing
        self._lock = threading.Lock()
        self._unsynced: dict[str, _Unsynced] = {}
        self.lost_bytes = 0  # unsynced bytes the last cut dropped

    def _real(self, path: str) -> str:
        return str(self.backing) + path

    @staticmethod
    def _lazy(path: str) -> bool:
        return not path.endswith("-shm")

    # -- the cut ----------------------------------------------------------------------

    def cut_power(self) -> None:
        """Forget every write that was not fsynced."""
        with self._lock:
            self.lost_bytes = sum(
                len(p) for u in self._unsynced.values() for p in u.pages.values()
            )
            self._unsynced.clear()

    # -- data ---------------------------------------------------------------------------

    def _page(self, fd: int, unsynced: _Unsynced, index: int) -> bytearray:
        page = unsynced.pages.get(index)
        if page is None:
            page = bytearray(os.pread(fd, PAGE, index * PAGE).ljust(PAGE, b"\0"))
            unsynced.pages[index] = page
        return page

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        with self._lock:
            unsynced = self._unsynced.get(path)
            if unsynced is None:
                return os.pread(fi.fh, size, offset)
            size = max(0, min(size, unsynced.length - offset))
            out = bytearray()
            while len(out) < size:
                at = offset + len(out)
                index, start = divmod(at, PAGE)
                take = min(PAGE - start, size - len(out))
                page = unsynced.pages.get(index)
                if page is None:
                    chunk = os.pread(fi.fh, take, at).ljust(take, b"\0")
                else:
                    chunk = bytes(page[start : start + take])
                out += chunk
            return bytes(out)

    def write(self, path: str, data: bytes, offset: int, fi: Any) -> int:
        if not self._lazy(path):
            return os.pwrite(fi.fh, data, offset)
        with self._lock:
            unsynced = self._unsynced.get(path)
            if unsynced is None:
                unsynced = _Unsynced(os.fstat(fi.fh).st_size)
                self._unsynced[path] = unsynced
            done = 0
            while done < len(data):
                index, start = divmod(offset + done, PAGE)
                take = min(PAGE - start, len(data) - done)
                page = self._page(fi.fh, unsynced, index)
                page[start : start + take] = data[done : done + take]
                done += take
            unsynced.length = max(unsynced.length, offset + len(data))
            return len(data)

    def fsync(self, path: str, datasync: int, fi: Any) -> int:
        with self._lock:
            unsynced = self._unsynced.pop(path, None)
            if unsynced is None:
                os.fsync(fi.fh)
                return 0
            # Whatever wrote them, through any descriptor: the one syncing may be
            # read-only (PostgreSQL's checkpointer syncs files backends wrote).
            fd = os.open(self._real(path), os.O_WRONLY)
            try:
                for index, page in sorted(unsynced.pages.items()):
                    end = min(PAGE, unsynced.length - index * PAGE)
                    if end > 0:
                        os.pwrite(fd, bytes(page[:end]), index * PAGE)
                if os.fstat(fd).st_size < unsynced.length:
                    os.ftruncate(fd, unsynced.length)
                os.fsync(fd)
            finally:
                os.close(fd)
        return 0

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        with self._lock:
            os.truncate(self._real(path), length)
            unsynced = self._unsynced.get(path)
            if unsynced is not None:
                unsynced.length = length
                for index in [i for i in unsynced.pages if i * PAGE >= length]:
                    del unsynced.pages[index]
        return 0

    # -- files and metadata -------------------------------------------------------------

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        try:
            st = os.lstat(self._real(path))
        except FileNotFoundError:
            raise mfusepy.FuseOSError(errno.ENOENT) from None
        attrs = {
            key: getattr(st, key)
            for key in (
                "st_mode",
                "st_nlink",
                "st_uid",
                "st_gid",
                "st_size",
                "st_atime_ns",
                "st_mtime_ns",
                "st_ctime_ns",
            )
        }
        for key in ("st_atime", "st_mtime", "st_ctime"):
            attrs[key] = attrs.pop(f"{key}_ns")
        with self._lock:
            unsynced = self._unsynced.get(path)
            if unsynced is not None:
                attrs["st_size"] = unsynced.length
        return attrs

    def _open(self, path: str, fi: Any, fd: int) -> int:
        fi.fh = fd
        fi.direct_io = self._lazy(path)
        return 0

    def open(self, path: str, fi: Any) -> int:
        flags = fi.flags & ~os.O_APPEND
        if flags & os.O_ACCMODE == os.O_WRONLY:  # writes of part of a page read it
            flags = flags & ~os.O_ACCMODE | os.O_RDWR
        if flags & os.O_TRUNC:  # reaches the backing file at once, as truncate does
            with self._lock:
                self._unsynced.pop(path, None)
        return self._open(path, fi, os.open(self._real(path), flags))

    def create(self, path: str, mode: int, fi: Any) -> int:
        fd = os.open(self._real(path), os.O_RDWR | os.O_CREAT, mode)
        self._own(self._real(path))
        return self._open(path, fi, fd)

    @staticmethod
    def _own(real: str) -> None:
        """Give a new file or directory to the user whose process made it (this
        server runs as root when it serves other users)."""
        uid, gid, _pid = mfusepy.fuse_get_context()
        if os.geteuid() == 0 and (uid, gid) != (0, 0):
            os.chown(real, uid, gid)

    def release(self, path: str, fi: Any) -> int:
        os.close(fi.fh)  # unsynced pages stay: closing a file does not sync it
        return 0

    def flush(self, path: str, fi: Any) -> int:
        return 0

    def unlink(self, path: str) -> None:
        with self._lock:
            os.unlink(self._real(path))
            self._unsynced.pop(path, None)

    def rename(self, old: str, new: str) -> None:
        with self._lock:
            os.rename(self._real(old), self._real(new))
            if old in self._unsynced:
                self._unsynced[new] = self._unsynced.pop(old)

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(self._real(path), mode)
        self._own(self._real(path))

    def rmdir(self, path: str) -> None:
        os.rmdir(self._real(path))

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, Any]:
        st = os.statvfs(self._real(path))
        return {
            key: getattr(st, key)
            for key in (
                "f_bavail",
                "f_bfree",
                "f_blocks",
                "f_bsize",
                "f_favail",
                "f_ffree",
                "f_files",
                "f_flag",
                "f_frsize",
                "f_namemax",
            )
        }


class LazyMount:
    """A LazyFS served by a process of its own (a FUSE server must never share a
    process with a client of its files: a call holding the interpreter lock while
    it waits on the server would wait for ever)."""

    def __init__(
        self, backing: Path, mountpoint: Path, *, allow_other: bool = False
    ) -> None:
        self.backing = backing
        self.mountpoint = mountpoint
        mountpoint.mkdir(parents=True, exist_ok=True)
        others = ["allow_other"] if allow_other else []
        self._server = subprocess.Popen(
            [sys.executable, __file__, str(backing), str(mountpoint), *others],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._server.stdin is not None
        assert self._server.stdout is not None
        self._in, self._out = self._server.stdin, self._server.stdout
        if self._out.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"the lazy filesystem did not mount at {mountpoint}")

    def cut_power(self) -> int:
        """Drop every unsynced write (kill the writers first); the bytes dropped."""
        self._in.write("cut\n")
        self._in.flush()
        return int(self._out.readline().split()[1])

    def close(self) -> None:
        """Unmount and stop the server."""
        subprocess.run(
            ["fusermount3", "-u", "-z", str(self.mountpoint)],
            check=False,
            capture_output=True,
        )
        self._in.close()
        try:
            self._server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._server.kill()
            self._server.wait()
        self._out.close()


@contextmanager
def lazy_mount(
    backing: Path, mountpoint: Path, *, allow_other: bool = False
) -> Iterator[LazyMount]:
    """Serve `backing` at `mountpoint` through a LazyFS; unmount on exit.
    `allow_other`: other users' processes may use it too (a PostgreSQL server)."""
    mount = LazyMount(backing, mountpoint, allow_other=allow_other)
    try:
        yield mount
    finally:
        mount.close()


def _serve(backing: Path, mountpoint: Path, allow_other: bool) -> None:
    """The server process: FUSE in a thread; commands on stdin ("cut"), answers on
    stdout; ends when stdin closes or the filesystem is unmounted."""
    fs = LazyFS(backing)
    thread = threading.Thread(
        target=mfusepy.FUSE,
        args=(fs, str(mountpoint)),
        kwargs={"foreground": True, "raw_fi": True, "allow_other": allow_other},
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not os.path.ismount(mountpoint):
        if not thread.is_alive() or time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() == "cut":
            fs.cut_power()
            print(f"cut {fs.lost_bytes}", flush=True)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), Path(sys.argv[2]), "allow_other" in sys.argv[3:])
