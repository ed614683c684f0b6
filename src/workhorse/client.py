"""Client: every task and code operation, over storage, for the SDK, CLI and API.

One copy of the logic; async callers use `asyncio.to_thread` at the public edge.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workhorse.domain.ids import new_id
from workhorse.domain.task import (
    Attempt,
    CodeDefaults,
    NewTask,
    Task,
    TaskOptions,
    build_task,
)
from workhorse.errors import InvalidInput, NotFound
from workhorse.settings import Settings
from workhorse.storage import Storage
from workhorse.storage.stores import Transaction

DEFAULT_PROJECT = "default"
MAX_BATCH = 10_000
# Code defaults are read at most this often per process; a changed default
# applies to tasks queued after it.
CODE_CACHE_SECONDS = 2.0
RUNTIMES = ("sh", "python", "node", "ruby", "binary")
MAX_PACKAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CodePackage:
    """Settings for an uploaded code package."""

    name: str
    command: str
    runtime: str = "sh"
    max_concurrency: int | None = None
    retries: int = 0
    retries_delay: int = 0
    backoff: bool = False
    priority: int = 0
    timeout: int = 3600
    env: dict[str, str] | None = None
    config: str | None = None


def zip_directory(path: Path) -> bytes:
    """A deterministic zip of a directory (sorted names, fixed timestamps)."""
    if not path.is_dir():
        raise InvalidInput(f"{path} is not a directory")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = file.relative_to(path).as_posix()
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (file.stat().st_mode & 0o777) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, file.read_bytes())
    return buf.getvalue()


class Client:
    """Task and code operations within one project."""

    def __init__(
        self, storage: Storage, *, project_id: str = DEFAULT_PROJECT, settings: Settings | None = None
    ) -> None:
        self.storage = storage
        self.settings = settings or storage.settings
        self.project_id = project_id
        self._codes: dict[str, tuple[float, CodeDefaults]] = {}
        self._codes_lock = threading.Lock()

    # -- queueing ---------------------------------------------------------------

    def _code_defaults(self, tx: Transaction, code_name: str) -> CodeDefaults:
        now = time.monotonic()
        with self._codes_lock:
            cached = self._codes.get(code_name)
        if cached and now - cached[0] < CODE_CACHE_SECONDS:
            return cached[1]
        row = tx.codes.get(self.project_id, code_name)
        if row is None:
            raise NotFound(f"unknown code {code_name!r}: upload it or register the task first")
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
        """Queue one task durably; returns its id once committed."""
        return self.queue_many(code_name, [payload], options)[0]

    def queue_many(
        self,
        code_name: str,
        payloads: Sequence[str],
        options: TaskOptions | None = None,
        *,
        per_task: Sequence[TaskOptions] | None = None,
    ) -> list[str]:
        """Queue tasks of one code in one transaction; all or none are stored."""
        if not payloads:
            raise InvalidInput("nothing to queue: the list of payloads is empty")
        if len(payloads) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} tasks per call, got {len(payloads)}")
        base = options or TaskOptions()
        ids = [new_id() for _ in payloads]

        def work(tx: Transaction) -> list[str]:
            code = self._code_defaults(tx, code_name)
            tasks = [
                build_task(
                    task_id=ids[i],
                    project_id=self.project_id,
                    code=code,
                    payload=payload,
                    options=per_task[i] if per_task else base,
                    max_payload_bytes=self.settings.max_payload_bytes,
                )
                for i, payload in enumerate(payloads)
            ]
            tx.tasks.insert_many(tasks)
            return ids

        return self.storage.run(work)

    def queue_tasks(self, tx: Transaction, tasks: Sequence[NewTask]) -> None:
        """Insert already-built tasks inside a caller's transaction (schedules, push)."""
        tx.tasks.insert_many(tasks)

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
        task = self.storage.run(lambda tx: tx.tasks.get(self.project_id, task_id), write=False)
        if task is None:
            raise NotFound(f"task {task_id} not found")
        return task

    def list(self, **filters: Any) -> list[tuple[int, Task]]:
        """Tasks newest first with their seq cursors (see TaskStore.list)."""
        return self.storage.run(lambda tx: tx.tasks.list(self.project_id, **filters), write=False)

    def attempts(self, task_id: str) -> list[Attempt]:
        """Recorded attempts of a task."""
        self.get(task_id)
        return self.storage.run(lambda tx: tx.tasks.attempts(task_id), write=False)

    def log(self, task_id: str) -> str:
        """The newest attempt's output so far."""
        self.get(task_id)
        chunks = self.storage.run(lambda tx: tx.tasks.log(task_id), write=False)
        return "".join(text for _, text in chunks)

    def log_since(self, task_id: str, from_chunk: int) -> list[tuple[int, str]]:
        """Chunks of output from `from_chunk` on (for following a running task)."""
        return self.storage.run(lambda tx: tx.tasks.log(task_id, from_chunk=from_chunk), write=False)

    def counts(self) -> list[tuple[str, str, int]]:
        """(code, status, count) for this project."""
        return self.storage.run(lambda tx: tx.tasks.count_by_status(self.project_id), write=False)

    def runners(self) -> list[dict[str, Any]]:
        """Known runners with heartbeat ages."""
        return self.storage.run(lambda tx: tx.runners.list(), write=False)

    # -- changing ---------------------------------------------------------------

    def cancel(self, task_id: str) -> Task:
        """Cancel a queued or running task; a no-op on a finished one."""
        self.storage.run(lambda tx: tx.tasks.cancel(self.project_id, task_id))
        return self.get(task_id)

    def retry(self, task_id: str, *, delay: float = 0) -> str:
        """Queue a new task with the same code, payload and options (IronWorker retry)."""
        old = self.get(task_id)
        if not old.status.is_final:
            raise InvalidInput(f"task {task_id} is {old.status}; only finished tasks can be retried")

        def work(tx: Transaction) -> str:
            new = build_task(
                task_id=new_id(),
                project_id=self.project_id,
                code=CodeDefaults(name=old.code_name, kind=old.kind, revision=old.code_revision),
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
                ),
                max_payload_bytes=self.settings.max_payload_bytes,
            )
            tx.tasks.insert_many([new])
            return new.id

        return self.storage.run(work)

    def set_progress(self, task_id: str, progress: int, message: str | None = None) -> None:
        """Progress of a running task, as reported over the API."""
        if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
            raise InvalidInput("percent must be a whole number from 0 to 100")
        self.get(task_id)
        self.storage.run(
            lambda tx: tx.tasks.report_progress(self.project_id, task_id, progress, message)
        )

    # -- codes ------------------------------------------------------------------

    def register_python(self, name: str, options: dict[str, Any]) -> None:
        """Make a Python task known to every process (idempotent)."""
        ok = self.storage.run(
            lambda tx: tx.codes.upsert_python(project_id=self.project_id, name=name, options=options)
        )
        if not ok:
            raise InvalidInput(f"{name!r} is already a code package; choose another task name")
        self.forget_code(name)

    def upload(self, package: CodePackage, archive: bytes) -> dict[str, Any]:
        """Store a new revision of a code package; returns the code row."""
        validate_package(package, archive)
        checksum = hashlib.sha256(archive).hexdigest()
        options = json.dumps({"env": package.env or {}, "config": package.config})

        def work(tx: Transaction) -> dict[str, Any]:
            row = tx.codes.upsert_package(
                {
                    "id": new_id(),
                    "project_id": self.project_id,
                    "name": package.name,
                    "command": package.command,
                    "runtime": package.runtime,
                    "max_concurrency": package.max_concurrency,
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
                raise InvalidInput(f"{package.name!r} is a Python task; choose another code name")
            tx.codes.insert_revision(
                {
                    "project_id": self.project_id,
                    "code_name": package.name,
                    "revision": row["revision"],
                    "checksum": checksum,
                    "size": len(archive),
                    "archive": archive,
                    "blob_path": None,
                    "command": package.command,
                    "runtime": package.runtime,
                    "options": options,
                    "now": None,
                }
            )
            return row

        row = self.storage.run(work)
        self.forget_code(package.name)
        return row

    def upload_directory(self, path: Path, package: CodePackage) -> dict[str, Any]:
        """Zip a directory and upload it as a new revision."""
        return self.upload(package, zip_directory(path))

    def code(self, name: str) -> dict[str, Any]:
        """A code's row; NotFound otherwise."""
        row = self.storage.run(lambda tx: tx.codes.get(self.project_id, name), write=False)
        if row is None:
            raise NotFound(f"code {name!r} not found")
        return row

    def codes(self) -> list[dict[str, Any]]:
        """Codes of this project."""
        return self.storage.run(lambda tx: tx.codes.list(self.project_id, limit=1000), write=False)

    def set_paused(self, name: str, paused: bool) -> None:
        """Pause or resume a code's task queue."""
        if not self.storage.run(lambda tx: tx.codes.set_paused(self.project_id, name, paused)):
            raise NotFound(f"code {name!r} not found")
        self.forget_code(name)

    def delete_code(self, name: str) -> None:
        """Delete a code and its revisions."""
        if not self.storage.run(lambda tx: tx.codes.delete(self.project_id, name)):
            raise NotFound(f"code {name!r} not found")
        self.forget_code(name)

    def with_project(self, project_id: str) -> Client:
        """The same client, for another project."""
        return Client(self.storage, project_id=project_id, settings=self.settings)


def validate_package(package: CodePackage, archive: bytes) -> None:
    """Refuse a package whose settings or archive are unusable."""
    if not package.name or "/" in package.name or len(package.name) > 255:
        raise InvalidInput("code name must be 1-255 characters without '/'")
    if not package.command or not package.command.strip():
        raise InvalidInput("a code package needs a command, e.g. --command 'python3 main.py'")
    if package.runtime not in RUNTIMES:
        raise InvalidInput(f"unknown runtime {package.runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if package.max_concurrency is not None and package.max_concurrency < 1:
        raise InvalidInput("max_concurrency must be at least 1")
    if len(archive) > MAX_PACKAGE_BYTES:
        raise InvalidInput(f"package is {len(archive)} bytes; the limit is {MAX_PACKAGE_BYTES}")
    try:
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            for info in zf.infolist():
                name = info.filename
                if name.startswith("/") or ".." in Path(name).parts:
                    raise InvalidInput(f"package entry {name!r} points outside the package")
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) == 0o120000:
                    raise InvalidInput(f"package entry {name!r} is a symlink; symlinks are refused")
    except zipfile.BadZipFile:
        raise InvalidInput("package is not a valid zip archive") from None


def unpack_revision(archive: bytes, target: Path) -> None:
    """Unpack a stored (already validated) archive into `target` atomically."""
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        for info in zf.infolist():
            dest = tmp / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(dest, mode or 0o644)
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)  # another runner unpacked it first
