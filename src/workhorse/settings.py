"""Settings: one frozen value, read once from the environment and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from workhorse.errors import InvalidInput

DEFAULT_SQLITE_PATH = Path("var") / "workhorse.db"


def default_database_url() -> str:
    """`WORKHORSE_DATABASE_URL`, or a SQLite file under ./var/."""
    return os.environ.get("WORKHORSE_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


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
    """

    database_url: str = field(default_factory=default_database_url)
    max_payload_bytes: int = 64 * 1024
    max_message_bytes: int = 64 * 1024
    max_log_bytes: int = 8 * 1024 * 1024
    lease_seconds: float = 30.0
    default_timeout_seconds: int = 3600
    sqlite_synchronous: str = "FULL"
    producer_retry_seconds: float = 10.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Settings from `WORKHORSE_*` environment variables, then overrides."""
        base = cls(
            max_payload_bytes=_env_int("WORKHORSE_MAX_PAYLOAD_BYTES", 64 * 1024),
            max_message_bytes=_env_int("WORKHORSE_MAX_MESSAGE_BYTES", 64 * 1024),
            max_log_bytes=_env_int("WORKHORSE_MAX_LOG_BYTES", 8 * 1024 * 1024),
            lease_seconds=float(_env_int("WORKHORSE_LEASE_SECONDS", 30)),
            sqlite_synchronous=os.environ.get("WORKHORSE_SQLITE_SYNCHRONOUS", "FULL").upper(),
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)  # type: ignore[arg-type]
