"""Named-query loader: `-- name: x` blocks in .sql files become a dict of strings."""

from __future__ import annotations

import re
from importlib import resources
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str, source: str) -> dict[str, LiteralString]:
    """Split SQL text into named statements; fail on duplicates or empty bodies."""
    parts = _NAME.split(text)
    found: dict[str, LiteralString] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [
            ln for ln in body.strip().splitlines() if not ln.lstrip().startswith("--")
        ]
        sql = "\n".join(lines).strip().rstrip(";")
        if not sql:
            raise ValueError(f"{source}: query {name!r} is empty")
        if name in found:
            raise ValueError(f"{source}: query {name!r} is defined twice")
        found[name] = sql
    return found


def load(dialect: str) -> dict[str, LiteralString]:
    """All named queries of one dialect, keyed `entity.name` (e.g. `tasks.claim`)."""
    folder = resources.files("workhorse.storage") / dialect / "queries"
    out: dict[str, LiteralString] = {}
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".sql"):
            entity = item.name.removesuffix(".sql")
            for name, sql in parse(item.read_text(), item.name).items():
                out[f"{entity}.{name}"] = sql
    return out


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) for each migration file of a dialect, in order."""
    folder = resources.files("workhorse.storage") / dialect / "migrations"
    found = []
    for item in folder.iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", item.name)
        if match:
            found.append((int(match.group(1)), match.group(2), item.read_text()))
    return sorted(found)
