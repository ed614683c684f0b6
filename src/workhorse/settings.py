"""Settings: one frozen value, read once from the environment and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from workhorse.errors import InvalidInput

DEFAULT_SQLITE_PATH = Path("var") / "workhorse.db"


def default_database_url() -> str:
    """`WORKHORSE_DATABASE_URL`, or a SQLite file under ./var/."""
    return (
        os.environ.get("WORKHORSE_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that suit one machine.

    Attributes:
        database_url: `sqlite:///path` or `postgresql://...`.
        max_payload_bytes: largest task payload accepted (IronWorker: 64 KB).
        max_message_bytes: largest message body accepted (IronMQ: 64 KB default).
        lease_seconds: how long a claim holds without a heartbeat; a runner that
            dies is detected within this time.
        sqlite_synchronous: FULL by default; NORMAL loses acknowledged commits on
            power loss.
        max_package_bytes: largest code package archive accepted.
        blob_dir: where archives over `blob_threshold_bytes` are kept instead of
            the database (a directory every runner host mounts); None keeps all
            archives in the database.
        sandbox: how code packages run: `auto` (bubblewrap when it works here,
            else a plain child process), `bwrap` (required) or `process`.
        sandbox_uid: the unprivileged uid (and gid) tasks run as when the runner
            runs as root.
        push_allow: exceptions to the push-queue address guard: CIDRs, host
            names or `*` (`WORKHORSE_PUSH_ALLOW`, comma separated). By default
            webhooks may not reach loopback, private, link-local or metadata
            addresses.
    """

    database_url: str = field(default_factory=default_database_url)
    max_payload_bytes: int = 64 * 1024
    max_message_bytes: int = 64 * 1024
    max_log_bytes: int = 8 * 1024 * 1024
    lease_seconds: float = 30.0
    default_timeout_seconds: int = 3600
    sqlite_synchronous: str = "FULL"
    producer_retry_seconds: float = 10.0
    max_package_bytes: int = 50 * 1024 * 1024
    blob_dir: Path | None = None
    blob_threshold_bytes: int = 1024 * 1024
    sandbox: str = "auto"
    sandbox_uid: int = 65534
    push_allow: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from `WORKHORSE_*` environment variables, then overrides."""
        base = cls(
            max_payload_bytes=_env_int("WORKHORSE_MAX_PAYLOAD_BYTES", 64 * 1024),
            max_message_bytes=_env_int("WORKHORSE_MAX_MESSAGE_BYTES", 64 * 1024),
            max_log_bytes=_env_int("WORKHORSE_MAX_LOG_BYTES", 8 * 1024 * 1024),
            lease_seconds=float(_env_int("WORKHORSE_LEASE_SECONDS", 30)),
            sqlite_synchronous=os.environ.get(
                "WORKHORSE_SQLITE_SYNCHRONOUS", "FULL"
            ).upper(),
            max_package_bytes=_env_int("WORKHORSE_MAX_PACKAGE_BYTES", 50 * 1024 * 1024),
            blob_dir=Path(os.environ["WORKHORSE_BLOB_DIR"])
            if os.environ.get("WORKHORSE_BLOB_DIR")
            else None,
            blob_threshold_bytes=_env_int(
                "WORKHORSE_BLOB_THRESHOLD_BYTES", 1024 * 1024
            ),
            sandbox=os.environ.get("WORKHORSE_SANDBOX", "auto").lower(),
            sandbox_uid=_env_int("WORKHORSE_SANDBOX_UID", 65534),
            push_allow=tuple(
                entry.strip()
                for entry in os.environ.get("WORKHORSE_PUSH_ALLOW", "").split(",")
                if entry.strip()
            ),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]
