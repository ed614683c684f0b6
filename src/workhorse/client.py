"""Client: every task and code operation, over storage, for the SDK, CLI and API.

One copy of the logic; async callers use `asyncio.to_thread` at the public edge.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import io
import os
import shutil
import stat
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workhorse.domain.ids import new_id, new_ids
from workhorse.domain.limits import CodeOptions, code_options, decode_code_options
from workhorse.domain.rate import parse_rate
from workhorse.domain.task import (
    Attempt,
    CodeDefaults,
    NewTask,
    Task,
    TaskOptions,
    TaskStatus,
    build_task,
    build_tasks,
)
from workhorse.errors import InvalidInput, NotFound
from workhorse.settings import Settings
from workhorse.storage import Storage
from workhorse.storage.blobs import BlobStore
from workhorse.storage.stores import INTAKE_CHECK_EVERY, INTAKE_LIMIT, Transaction

DEFAULT_PROJECT = "default"
MAX_BATCH = 10_000
# Code defaults are read at most this often per process; a changed default
# applies to tasks queued after it.
CODE_CACHE_SECONDS = 2.0
RUNTIMES = ("sh", "python", "node", "ruby", "binary")
MAX_PACKAGE_BYTES = 50 * 1024 * 1024
# An archive may unpack to at most this many times its limit (zip bombs).
MAX_UNPACK_RATIO = 10
MAX_PACKAGE_ENTRIES = 100_000
REVISIONS_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class CodePackage:
    """Settings for an uploaded code package.

    The limits (`memory` and `disk` in bytes, `cpu` in seconds, `processes`,
    `open_files`) left as None take the documented defaults when a task runs;
    see `workhorse.domain.limits.Limits`.
    """

    name: str
    command: str
    runtime: str = "sh"
    max_concurrency: int | None = None
    # Starts per second on all runners: "10/s", "100/m", "5/2h" or a number.
    rate_limit: str | float | None = None
    retries: int = 0
    retries_delay: int = 0
    backoff: bool = False
    priority: int = 0
    timeout: int = 3600
    env: dict[str, str] | None = None
    config: str | None = None
    memory: int | str | None = None
    cpu: int | None = None
    processes: int | None = None
    open_files: int | None = None
    disk: int | str | None = None
    network: bool = False
    image: str | None = None

    def options(self) -> CodeOptions:
        """The validated options a revision stores (raises InvalidInput)."""
        return code_options(
            env=self.env,
            config=self.config,
            limits={
                "memory": self.memory,
                "cpu": self.cpu,
                "processes": self.processes,
                "open_files": self.open_files,
                "disk": self.disk,
            },
            network=self.network,
            image=self.image,
        )


def zip_directory(path: Path) -> bytes:
    """A deterministic zip of a directory (sorted names, fixed timestamps).

    A symlink to a file inside the directory is stored as a copy of that file;
    symlinks that leave the directory, and symlinked directories, are refused.
    """
    if not path.is_dir():
        raise InvalidInput(f"{path} is not a directory")
    root = path.resolve()
    files: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in dirnames:
            if (here / name).is_symlink():
                raise InvalidInput(
                    f"{here / name} is a symlinked directory; copy it instead"
                )
        for name in filenames:
            file = here / name
            target = file.resolve()
            if file.is_symlink() and not target.is_relative_to(root):
                raise InvalidInput(
                    f"{file} is a symlink out of the package (to {target})"
                )
            if target.is_file():
                files.append((file.relative_to(root).as_posix(), target))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, file in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (file.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, file.read_bytes())
    return buf.getvalue()


class Client:
    """Task and code operations within one project."""

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
        self._codes: dict[str, tuple[float, CodeDefaults]] = {}
        self._codes_lock = threading.Lock()
        self._enqueued = 0  # single enqueues, to look at the intake now and then

    # -- queueing ---------------------------------------------------------------

    def _cached_code(self, code_name: str) -> CodeDefaults | None:
        cached = self._codes.get(code_name)
        if cached and time.monotonic() - cached[0] < CODE_CACHE_SECONDS:
            return cached[1]
        return None

    def _code_defaults(self, tx: Transaction, code_name: str) -> CodeDefaults:
        now = time.monotonic()
        cached = self._cached_code(code_name)
        if cached is not None:
            return cached
        row = tx.codes.get(self.project_id, code_name)
        if row is None:
            raise NotFound(
                f"unknown code {code_name!r}: upload it or register the task first"
            )
        defaults = CodeDefaults(
            name=code_name,
            kind=row["kind"],
            revision=row["revision"],
            priority=row["priority"],
            timeout=row["timeout"],
            retries=row["retries"],
            retries_delay=row["retries_delay"],
            backoff=row["backoff"],
            paused=row["paused"],
            unique=bool(row["options"].get("unique")),
        )
        with self._codes_lock:
            self._codes[code_name] = (now, defaults)
        return defaults

    def forget_code(self, code_name: str) -> None:
        """Drop a cached code definition (after an upload or a change)."""
        with self._codes_lock:
            self._codes.pop(code_name, None)

    def queue(
        self, code_name: str, payload: str = "", options: TaskOptions | None = None
    ) -> str:
        """Queue one task durably; returns its id once committed (for a unique task
        whose key is held, the holder's id: see `TaskOptions.unique_key`)."""
        return self.queue_many_as(code_name, [payload], options)[1][0]

    def queue_many(
        self,
        code_name: str,
        payloads: Sequence[str],
        options: TaskOptions | None = None,
        *,
        per_task: Sequence[TaskOptions] | None = None,
    ) -> list[str]:
        """Queue tasks of one code in one transaction; all or none are stored.

        Returns their ids in order; a unique task whose key is held by a queued or
        running task stores nothing and gives that task's id instead.
        """
        return self.queue_many_as(code_name, payloads, options, per_task=per_task)[1]

    def queue_many_as(
        self,
        code_name: str,
        payloads: Sequence[str],
        options: TaskOptions | None = None,
        *,
        per_task: Sequence[TaskOptions] | None = None,
    ) -> tuple[list[NewTask], list[str]]:
        """`queue_many`, also giving the tasks built: a task whose id differs from
        the id returned in its place was a duplicate of that one."""
        if not payloads:
            raise InvalidInput("nothing to queue: the list of payloads is empty")
        if len(payloads) > MAX_BATCH:
            raise InvalidInput(
                f"at most {MAX_BATCH} tasks per call, got {len(payloads)}"
            )
        base = options or TaskOptions()
        code = self._cached_code(code_name) or self.storage.run(
            lambda tx: self._code_defaults(tx, code_name), write=False
        )
        # Everything is validated before anything is written: bad input changes nothing.
        if len(payloads) == 1:
            tasks = [
                build_task(
                    task_id=new_id(),
                    project_id=self.project_id,
                    code=code,
                    payload=payloads[0],
                    options=per_task[0] if per_task else base,
                    max_payload_bytes=self.settings.max_payload_bytes,
                )
            ]
        elif per_task:
            tasks = [
                build_task(
                    task_id=new_id(),
                    project_id=self.project_id,
                    code=code,
                    payload=payload,
                    options=per_task[i],
                    max_payload_bytes=self.settings.max_payload_bytes,
                )
                for i, payload in enumerate(payloads)
            ]
        else:
            tasks = build_tasks(
                ids=new_ids(len(payloads)),
                project_id=self.project_id,
                code=code,
                payloads=payloads,
                options=base,
                max_payload_bytes=self.settings.max_payload_bytes,
            )
        # One task is one statement; a batch (or a unique task) may take several.
        if len(tasks) == 1 and tasks[0].unique_key is None:
            # Threads queueing at once share commits; one alone commits at once.
            self.storage.run_shared(
                lambda tx: tx.tasks.enqueue(tasks[0]), single_statement=True
            )
            self._enqueued += 1
            if self._enqueued % INTAKE_CHECK_EVERY == 0:
                self.admit(at_least=INTAKE_LIMIT)
            return tasks, [tasks[0].id]
        if len(tasks) == 1 and self.storage.dialect == "postgres":
            # A unique task: one round trip, unless its key's holder just finished.
            holder = self.storage.run(
                lambda tx: tx.tasks.insert_unique_one(tasks[0]), single_statement=True
            )
            if holder is not None:
                return tasks, [holder]
        return tasks, self.storage.run(lambda tx: tx.tasks.insert_many(tasks))

    def queue_children(
        self,
        parent_id: str,
        code_name: str,
        payloads: Sequence[str],
        options: TaskOptions,
        *,
        then: str | None = None,
    ) -> builtins.list[str]:
        """Queue children of a task in one transaction; `then` is a code queued once
        all of them have finished (fan-in), with the children's status counts."""
        if not payloads:
            raise InvalidInput("nothing to queue: the list of payloads is empty")
        if len(payloads) > MAX_BATCH:
            raise InvalidInput(
                f"at most {MAX_BATCH} tasks per call, got {len(payloads)}"
            )

        def work(tx: Transaction) -> builtins.list[str]:
            if then is not None and tx.codes.get(self.project_id, then) is None:
                raise NotFound(f"unknown code {then!r} for the fan-in")
            tasks = [self.build(tx, code_name, p, options) for p in payloads]
            ids = tx.tasks.insert_many(tasks)
            if then is not None:
                tx.fanins.insert(
                    parent_id=parent_id,
                    project_id=self.project_id,
                    code_name=then,
                    cluster=options.cluster,
                )
            return ids

        return self.storage.run(work)

    def queue_tasks(
        self, tx: Transaction, tasks: Sequence[NewTask]
    ) -> builtins.list[str]:
        """Insert already-built tasks inside a caller's transaction (schedules, push);
        their ids, as `queue_many` gives them."""
        return tx.tasks.insert_many(tasks)

    def build(
        self, tx: Transaction, code_name: str, payload: str, options: TaskOptions
    ) -> NewTask:
        """Validate one task against its code, inside a caller's transaction."""
        return build_task(
            task_id=new_id(),
            project_id=self.project_id,
            code=self._code_defaults(tx, code_name),
            payload=payload,
            options=options,
            max_payload_bytes=self.settings.max_payload_bytes,
        )

    # -- reading ----------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """A task of this project; NotFound otherwise."""
        task = self.storage.run(
            lambda tx: tx.tasks.get(self.project_id, task_id), write=False
        )
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    def list(self, **filters: Any) -> list[tuple[int, Task]]:
        """Tasks newest first with their seq cursors (see TaskStore.list)."""
        self.admit()
        return self.storage.run(
            lambda tx: tx.tasks.list(self.project_id, **filters), write=False
        )

    def admit(self, *, at_least: int = 1) -> None:
        """Give tasks waiting in SQLite's intake their place among the others (a
        listing pages by that place), if `at_least` that many wait."""
        if (
            self.storage.dialect == "sqlite"
            and self.storage.run(lambda tx: tx.tasks.intake_length(), write=False)
            >= at_least
        ):
            self.storage.run(lambda tx: tx.tasks.admit())

    def attempts(self, task_id: str) -> builtins.list[Attempt]:
        """Recorded attempts of a task."""
        self.get(task_id)
        return self.storage.run(lambda tx: tx.tasks.attempts(task_id), write=False)

    def log(self, task_id: str) -> str:
        """The newest attempt's output so far."""
        self.get(task_id)
        chunks = self.storage.run(lambda tx: tx.tasks.log(task_id), write=False)
        return "".join(text for _, text in chunks)

    def log_since(
        self, task_id: str, from_chunk: int
    ) -> builtins.list[tuple[int, str]]:
        """Chunks of output from `from_chunk` on (for following a running task)."""
        return self.storage.run(
            lambda tx: tx.tasks.log(task_id, from_chunk=from_chunk), write=False
        )

    def children_summary(self, task_id: str) -> dict[str, int]:
        """Status counts of a task's children."""
        self.get(task_id)
        return self.storage.run(
            lambda tx: tx.tasks.children_summary(task_id), write=False
        )

    def counts(self) -> builtins.list[tuple[str, str, int]]:
        """(code, status, count) for this project."""
        return self.storage.run(
            lambda tx: tx.tasks.count_by_status(self.project_id), write=False
        )

    def runners(self) -> builtins.list[dict[str, Any]]:
        """Known runners with heartbeat ages."""
        return self.storage.run(lambda tx: tx.runners.list(), write=False)

    # -- changing ---------------------------------------------------------------

    def cancel(self, task_id: str) -> Task:
        """Cancel a queued or running task; a no-op on a finished one."""
        self.storage.run(lambda tx: tx.tasks.cancel(self.project_id, task_id))
        return self.get(task_id)

    def retry(
        self, task_id: str, *, delay: float = 0, unfinished_too: bool = False
    ) -> str:
        """Queue a new task with the same code, payload and options (IronWorker retry).

        Only finished tasks are retried unless `unfinished_too` (the IronWorker API
        allows copying a queued or running task as well).
        """
        old = self.get(task_id)
        if not old.status.is_final and not unfinished_too:
            raise InvalidInput(
                f"task {task_id} is {old.status}; only finished tasks can be retried"
            )

        def work(tx: Transaction) -> str:
            new = build_task(
                task_id=new_id(),
                project_id=self.project_id,
                code=CodeDefaults(
                    name=old.code_name, kind=old.kind, revision=old.code_revision
                ),
                payload=old.payload,
                options=TaskOptions(
                    priority=old.priority,
                    delay=delay,
                    timeout=old.timeout,
                    label=old.label,
                    cluster=old.cluster,
                    retries=old.retries,
                    retries_delay=old.retries_delay,
                    backoff=old.backoff,
                    parent_id=old.parent_id,
                    schedule_id=old.schedule_id,
                    unique_key=old.unique_key,
                ),
                max_payload_bytes=self.settings.max_payload_bytes,
            )
            return tx.tasks.insert_many([new])[0]

        return self.storage.run(work)

    def set_progress(
        self, task_id: str, progress: int, message: str | None = None
    ) -> None:
        """Progress of a running task, as reported over the API."""
        if (
            isinstance(progress, bool)
            or not isinstance(progress, int)
            or not 0 <= progress <= 100
        ):
            raise InvalidInput("percent must be a whole number from 0 to 100")
        self.get(task_id)
        self.storage.run(
            lambda tx: tx.tasks.report_progress(
                self.project_id, task_id, progress, message
            )
        )

    # -- codes ------------------------------------------------------------------

    def register_python(self, name: str, options: dict[str, Any]) -> None:
        """Make a Python task known to every process (idempotent)."""
        ok = self.storage.run(
            lambda tx: tx.codes.upsert_python(
                project_id=self.project_id, name=name, options=options
            )
        )
        if not ok:
            raise InvalidInput(
                f"{name!r} is already a code package; choose another task name"
            )
        self.forget_code(name)

    def _blobs(self) -> BlobStore | None:
        blob_dir = self.settings.blob_dir
        return BlobStore(blob_dir) if blob_dir is not None else None

    def upload(self, package: CodePackage, archive: bytes) -> dict[str, Any]:
        """Store a new revision of a code package; returns the code row.

        Archives over `Settings.blob_threshold_bytes` go to the blob directory
        when one is configured, the rest into the database. Nothing is stored
        when validation or the transaction fails.

        Raises:
            InvalidInput: bad settings or archive, naming the problem.
        """
        validate_package(package, archive, max_bytes=self.settings.max_package_bytes)
        options = package.options().to_json()
        checksum = hashlib.sha256(archive).hexdigest()
        blobs = self._blobs()
        blob_path = None
        if blobs is not None and len(archive) > self.settings.blob_threshold_bytes:
            blob_path = blobs.put(checksum, archive)

        def work(tx: Transaction) -> dict[str, Any]:
            row = tx.codes.upsert_package(
                {
                    "id": new_id(),
                    "project_id": self.project_id,
                    "name": package.name,
                    "command": package.command,
                    "runtime": package.runtime,
                    "max_concurrency": package.max_concurrency,
                    "rate_limit": parse_rate(package.rate_limit),
                    "retries": package.retries,
                    "retries_delay": package.retries_delay,
                    "backoff": package.backoff,
                    "priority": package.priority,
                    "timeout": package.timeout,
                    "options": options,
                    "now": None,
                }
            )
            if row is None:
                raise InvalidInput(
                    f"{package.name!r} is a Python task; choose another code name"
                )
            tx.codes.insert_revision(
                {
                    "project_id": self.project_id,
                    "code_name": package.name,
                    "revision": row["revision"],
                    "checksum": checksum,
                    "size": len(archive),
                    "archive": None if blob_path else archive,
                    "blob_path": blob_path,
                    "command": package.command,
                    "runtime": package.runtime,
                    "options": options,
                    "now": None,
                }
            )
            return row

        try:
            row = self.storage.run(work)
        except BaseException:
            if blobs is not None and blob_path is not None:
                blobs.delete(blob_path)
            raise
        self.forget_code(package.name)
        return row

    def upload_directory(self, path: Path, package: CodePackage) -> dict[str, Any]:
        """Zip a directory and upload it as a new revision."""
        return self.upload(package, zip_directory(path))

    def code(self, name: str) -> dict[str, Any]:
        """A code's row; NotFound otherwise."""
        row = self.storage.run(
            lambda tx: tx.codes.get(self.project_id, name), write=False
        )
        if row is None:
            raise NotFound(f"code {name!r} not found")
        return row

    def codes(self) -> builtins.list[dict[str, Any]]:
        """Codes of this project."""
        return self.storage.run(
            lambda tx: tx.codes.list(self.project_id, limit=1000), write=False
        )

    def revisions(self, name: str) -> builtins.list[dict[str, Any]]:
        """Revisions of a package code, newest first (without archives).

        Each row has `revision`, `checksum`, `size`, `created_at`, `command`,
        `runtime`, `blob_path` and decoded `options`.
        """
        self.code(name)
        rows = self.storage.run(
            lambda tx: tx.codes.list_revisions(
                self.project_id, name, limit=REVISIONS_LIMIT
            ),
            write=False,
        )
        return [{**r, "options": decode_code_options(r["options"])} for r in rows]

    def download(self, name: str, revision: int | None = None) -> tuple[int, bytes]:
        """(revision number, zip bytes) of a revision; the latest by default."""
        number = revision if revision is not None else self.code(name)["revision"]
        if number is None:
            raise NotFound(f"code {name!r} is a Python task; it has no package")
        row = self.storage.run(
            lambda tx: tx.codes.get_revision(self.project_id, name, number), write=False
        )
        if row is None:
            raise NotFound(f"code {name!r} has no revision {number}")
        if row["archive"] is not None:
            return number, bytes(row["archive"])
        blobs = self._blobs()
        if blobs is None:
            raise InvalidInput(
                f"revision {number} is kept in the blob directory; "
                "set WORKHORSE_BLOB_DIR"
            )
        return number, blobs.get(row["blob_path"], row["checksum"])

    def code_stats(self, name: str) -> dict[str, int]:
        """Task counts per status for one code (every status, zeros included)."""
        self.code(name)
        counts = {s.value: 0 for s in TaskStatus}
        for code_name, status, n in self.counts():
            if code_name == name:
                counts[status] = n
        return counts

    def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume a code's task queue."""
        if not self.storage.run(
            lambda tx: tx.codes.set_paused(self.project_id, name, paused)
        ):
            raise NotFound(f"code {name!r} not found")
        self.forget_code(name)

    def delete_code(self, name: str) -> None:
        """Delete a code and its revisions (and their files in the blob directory).

        Tasks still queued for it end with an error when a runner picks them up.
        """

        def work(tx: Transaction) -> builtins.list[str]:
            revisions = tx.codes.list_revisions(self.project_id, name, limit=1_000_000)
            if not tx.codes.delete(self.project_id, name):
                raise NotFound(f"code {name!r} not found")
            return [r["blob_path"] for r in revisions if r["blob_path"]]

        blob_paths = self.storage.run(work)
        self.forget_code(name)
        blobs = self._blobs()
        if blobs is not None:
            for blob_path in blob_paths:
                blobs.delete(blob_path)

    def with_project(self, project_id: str) -> Client:
        """The same client, for another project."""
        return Client(self.storage, project_id=project_id, settings=self.settings)


def validate_package(
    package: CodePackage, archive: bytes, *, max_bytes: int = MAX_PACKAGE_BYTES
) -> None:
    """Refuse a package whose settings or archive are unusable.

    Raises:
        InvalidInput: naming the first problem found.
    """
    if (
        not package.name
        or "/" in package.name
        or package.name in (".", "..")
        or (len(package.name) > 255)
    ):
        raise InvalidInput("code name must be 1-255 characters without '/'")
    if not package.command or not package.command.strip():
        raise InvalidInput(
            "a code package needs a command, e.g. --command 'python3 main.py'"
        )
    if package.runtime not in RUNTIMES:
        raise InvalidInput(
            f"unknown runtime {package.runtime!r}; choose one of {', '.join(RUNTIMES)}"
        )
    if package.max_concurrency is not None and package.max_concurrency < 1:
        raise InvalidInput("max_concurrency must be at least 1")
    parse_rate(package.rate_limit)
    package.options()
    if len(archive) > max_bytes:
        raise InvalidInput(
            f"package is {len(archive)} bytes; the limit is {max_bytes} bytes"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            _check_entries(zf.infolist(), max_bytes * MAX_UNPACK_RATIO)
    except zipfile.BadZipFile:
        raise InvalidInput("package is not a valid zip archive") from None


def _check_entries(entries: list[zipfile.ZipInfo], max_unpacked: int | None) -> None:
    if len(entries) > MAX_PACKAGE_ENTRIES:
        raise InvalidInput(
            f"package has {len(entries)} entries; the limit is {MAX_PACKAGE_ENTRIES}"
        )
    total = 0
    for info in entries:
        name = info.filename
        parts = Path(name.replace("\\", "/")).parts
        drive = ":" in (parts[0] if parts else "")
        if name.startswith(("/", "\\")) or ".." in parts or drive:
            raise InvalidInput(f"package entry {name!r} points outside the package")
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise InvalidInput(
                f"package entry {name!r} is a symlink; symlinks are refused"
            )
        if mode and kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise InvalidInput(
                f"package entry {name!r} is not a regular file or directory"
            )
        total += info.file_size
        if max_unpacked is not None and total > max_unpacked:
            raise InvalidInput(f"package unpacks to more than {max_unpacked} bytes")


def unpack_revision(archive: bytes, target: Path) -> None:
    """Unpack a stored archive into `target` atomically.

    Entries are checked again (the row may not have come through `upload`), files
    become world-readable (0644, or 0755 when any execute bit was set) so that an
    unprivileged sandbox user can read them, and a concurrent unpack of the same
    revision by another thread or runner is harmless.
    """
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}-{new_id()[-8:]}")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            _check_entries(zf.infolist(), None)
            tmp.mkdir(parents=True)
            for info in zf.infolist():
                dest = tmp / info.filename
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(zf.read(info))
                mode = (info.external_attr >> 16) & 0o111
                os.chmod(dest, 0o755 if mode else 0o644)
        for dirpath, _, _ in os.walk(tmp):
            os.chmod(dirpath, 0o755)  # noqa: S103 - the sandbox user must read the code
        tmp.rename(target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
