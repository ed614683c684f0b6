"""Projects and API tokens.

A token is 32 random bytes (URL-safe base64). Only its SHA-256 hex digest is
stored, so a copy of the database does not reveal usable tokens; the token itself
is shown once, when it is created.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from workhorse.domain.ids import new_id
from workhorse.errors import InvalidInput
from workhorse.storage.stores import _Store

MAX_NAME_LENGTH = 255
TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> str:
    """A new unguessable API token (256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True, slots=True)
class Project:
    """A tenant: every task, code, queue and schedule belongs to one."""

    id: str
    name: str
    created_at: float
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is kept about a token (never the token)."""

    id: str
    project_id: str
    name: str
    created_at: float
    revoked_at: float | None


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{kind} name must be a string of at most {MAX_NAME_LENGTH} characters"
        )


class ProjectStore(_Store):
    """Projects and their tokens."""

    def create(
        self, name: str, *, project_id: str | None = None, now: float | None = None
    ) -> Project:
        """Create a project (or return the existing one with that id)."""
        _check_name("project", name)
        if not name.strip():
            raise InvalidInput("a project needs a name")
        pid = project_id or new_id(now)
        self.conn.execute(
            self.q["projects.insert"], {"id": pid, "name": name, "now": now}
        )
        project = self.get(pid)
        assert project is not None  # noqa: S101 - inserted or already there in this transaction
        return project

    def get(self, project_id: str) -> Project | None:
        """One project, or None."""
        row = self.conn.fetch_one(self.q["projects.get"], {"id": project_id})
        if row is None:
            return None
        return Project(
            id=row["id"], name=row["name"], created_at=float(row["created_at"])
        )

    def list(self) -> builtins.list[Project]:
        """Every project, oldest first, with its count of active tokens."""
        rows = self.conn.fetch_all(self.q["projects.list"])
        return [
            Project(r["id"], r["name"], float(r["created_at"]), int(r["tokens"]))
            for r in rows
        ]

    def create_token(
        self, project_id: str, *, name: str = "", now: float | None = None
    ) -> tuple[TokenInfo, str]:
        """Mint a token for an existing project: (its record, the token itself).

        The token is returned only here; the database keeps its hash.
        """
        _check_name("token", name)
        project = self.get(project_id)
        if project is None:
            raise InvalidInput(f"no project {project_id!r}: create it first")
        token = new_api_token()
        token_id = new_id(now)
        self.conn.execute(
            self.q["projects.insert_token"],
            {
                "id": token_id,
                "project_id": project_id,
                "name": name,
                "token_hash": hash_token(token),
                "now": now,
            },
        )
        info = next(t for t in self.list_tokens(project_id) if t.id == token_id)
        return info, token

    def project_of(self, token: str) -> str | None:
        """The project an active token belongs to, or None."""
        digest = hash_token(token)
        row = self.conn.fetch_one(
            self.q["projects.token_project"], {"token_hash": digest}
        )
        if row is None or not hmac.compare_digest(str(row["token_hash"]), digest):
            return None
        return str(row["project_id"])

    def list_tokens(self, project_id: str | None = None) -> builtins.list[TokenInfo]:
        """Tokens of a project (all projects when None), revoked ones included."""
        rows = self.conn.fetch_all(
            self.q["projects.list_tokens"], {"project_id": project_id}
        )
        return [
            TokenInfo(
                id=r["id"],
                project_id=r["project_id"],
                name=r["name"],
                created_at=float(r["created_at"]),
                revoked_at=None if r["revoked_at"] is None else float(r["revoked_at"]),
            )
            for r in rows
        ]

    def revoke_token(self, token_id: str, *, now: float | None = None) -> bool:
        """Revoke a token by id; False when there is no such active token."""
        return bool(
            self.conn.execute(
                self.q["projects.revoke_token"], {"id": token_id, "now": now}
            )
        )

    def active_token_count(self) -> int:
        """Active tokens across every project (0 means nobody can use the API yet)."""
        row = self.conn.fetch_one(self.q["projects.count_active_tokens"])
        return int(row["n"]) if row else 0
