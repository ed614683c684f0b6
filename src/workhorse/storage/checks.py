"""Health checks and backups of the database itself (`workhorse check`, `workhorse backup`).

Both open their own connections and never migrate or write to the database
they look at, so that they can be pointed at a damaged file, or at a copy.

SQLite keeps no checksum of its pages: `PRAGMA integrity_check` finds damage to
the file's structure (b-trees, page lists, index entries that do not match their
rows), not a flipped bit inside a stored value. PostgreSQL verifies each page it
reads when the cluster was initialised with data checksums, and counts the
failures; the check reports whether that protection is on.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workhorse.errors import InvalidInput
from workhorse.storage.queries import migrations

Level = Literal["ok", "warning", "error"]
# Problems integrity_check lists at most (it stops there).
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result: `level` says whether it is fine, worth a look, or damage."""

    check: str
    level: Level
    detail: str


def check_database(url: str, *, quick: bool = False) -> list[Finding]:
    """Every check of the database at `url`; `quick` skips SQLite's index-to-row
    comparison (PRAGMA quick_check), which takes most of a full check's time."""
    if url.startswith(("postgresql://", "postgres://")):
        return _check_postgres(url)
    if url.startswith("sqlite:"):
        return _check_sqlite(url, quick=quick)
    raise InvalidInput(
        f"unsupported database URL {url!r}: use sqlite:///path or postgresql://..."
    )


def _schema_finding(applied: set[int], dialect: str) -> Finding:
    known = [version for version, _name, _sql in migrations(dialect)]
    pending = [v for v in known if v not in applied]
    unknown = sorted(applied - set(known))
    if unknown:
        return Finding(
            "schema",
            "error",
            f"migrations {unknown} are newer than this Workhorse: upgrade it",
        )
    if pending:
        return Finding(
            "schema",
            "warning",
            f"{len(pending)} migrations pending (run `workhorse migrate`)",
        )
    return Finding("schema", "ok", f"up to date (version {max(known)})")


def _check_sqlite(url: str, *, quick: bool) -> list[Finding]:
    from workhorse.storage.sqlite.database import path_from_url

    path = path_from_url(url)
    if not path.is_file():
        return [Finding("file", "error", f"no database file at {path}")]
    wal = Path(f"{path}-wal")
    sizes = _size(path.stat().st_size)
    if wal.is_file() and wal.stat().st_size:
        sizes += f", WAL {_size(wal.stat().st_size)}"
    findings = [Finding("file", "ok", f"{path} ({sizes})")]
    try:
        # mode=rw: never create a file that is not there.
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)
    except sqlite3.Error as exc:
        return [*findings, Finding("open", "error", str(exc))]
    try:
        pragma = "quick_check" if quick else "integrity_check"
        try:
            rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})")]
        except sqlite3.DatabaseError as exc:
            # Damage bad enough that the check itself cannot read the file.
            return [*findings, Finding(pragma, "error", str(exc))]
        if rows == ["ok"]:
            findings.append(Finding(pragma, "ok", "no damage found"))
        else:
            more = " (and maybe more)" if len(rows) >= MAX_PROBLEMS else ""
            findings.append(
                Finding(
                    pragma, "error", f"{len(rows)} problems{more}: " + "; ".join(rows)
                )
            )
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            # Workhorse turns WAL on whenever it opens a file; another mode is a
            # copy from `workhorse backup` (one self-contained file).
            findings.append(
                Finding(
                    "journal",
                    "ok",
                    "WAL" if mode == "wal" else f"{mode} (WAL once Workhorse opens it)",
                )
            )
            applied = {
                int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")
            }
            findings.append(_schema_finding(applied, "sqlite"))
        except sqlite3.DatabaseError as exc:
            findings.append(Finding("schema", "error", str(exc)))
    finally:
        conn.close()
    return findings


def _check_postgres(url: str) -> list[Finding]:
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        return [Finding("connect", "error", str(exc).strip())]
    with conn:
        version = conn.execute("SHOW server_version").fetchone()
        findings = [
            Finding("connect", "ok", f"PostgreSQL {version[0] if version else '?'}")
        ]
        checksums = conn.execute("SHOW data_checksums").fetchone()
        if checksums and checksums[0] == "on":
            findings.append(Finding("data checksums", "ok", "on"))
        else:
            findings.append(
                Finding(
                    "data checksums",
                    "warning",
                    "off: damaged pages are not detected when read "
                    "(initdb --data-checksums, or pg_checksums --enable while stopped)",
                )
            )
        failures = conn.execute(
            "SELECT coalesce(checksum_failures, 0) FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
        if failures and failures[0]:
            findings.append(
                Finding(
                    "checksum failures",
                    "error",
                    f"{failures[0]} pages of this database failed their checksum",
                )
            )
        try:
            applied = {
                int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")
            }
        except psycopg.errors.UndefinedTable:
            applied = set()
        findings.append(_schema_finding(applied, "postgres"))
    return findings


@dataclass(frozen=True, slots=True)
class Backup:
    """A finished backup: where, how big, how long it took."""

    path: Path
    bytes: int
    seconds: float


def backup_sqlite(url: str, dest: Path) -> Backup:
    """Copy the SQLite database at `url` to `dest`, consistent as of one moment,
    while Workhorse keeps running.

    The copy is one read transaction (SQLite's backup API in a single step):
    writers go on meanwhile (WAL), and a step-by-step copy would start over at
    each of their commits. The copy becomes a single file (rollback journal),
    is checked (quick_check), synced, and only then renamed to `dest`.

    Raises:
        InvalidInput: not a SQLite URL, no database there, `dest` exists, or the
            copy failed its check.
    """
    if not url.startswith("sqlite:"):
        raise InvalidInput(
            "backups of PostgreSQL are PostgreSQL's own: pg_dump, or pg_basebackup "
            "with WAL archiving (see docs/operations.md)"
        )
    from workhorse.storage.sqlite.database import path_from_url

    source = path_from_url(url)
    if not source.is_file():
        raise InvalidInput(f"no database file at {source}")
    if dest.exists():
        raise InvalidInput(f"{dest} exists: choose a new file for the backup")
    if not dest.parent.is_dir():
        raise InvalidInput(f"no directory {dest.parent} for the backup")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.monotonic()
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True, timeout=30)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)
            out.execute("PRAGMA journal_mode=DELETE")
            verdict = out.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            out.close()
    finally:
        src.close()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise InvalidInput(
            f"the copy failed its check ({verdict}): run `workhorse check`"
        )
    _fsync(partial)
    try:
        os.link(partial, dest)  # unlike a rename, never replaces a file made meanwhile
    except FileExistsError:
        raise InvalidInput(f"{dest} exists: choose a new file for the backup") from None
    finally:
        partial.unlink()
    _fsync(dest.parent)
    return Backup(dest, dest.stat().st_size, time.monotonic() - started)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
