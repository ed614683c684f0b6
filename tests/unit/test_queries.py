"""Named queries: the loader's checks, and both dialects in lockstep."""

from __future__ import annotations

import pytest

from workhorse.storage.queries import load, migrations, parse

# Names that exist in one dialect only, on purpose.
# SQLite claims in three one-row steps (pick, mark, read); PostgreSQL in one statement,
# and has one-statement forms for an idle runner's claim and a single enqueue (plain or
# with a unique key). Single
# tasks and messages go through intakes on SQLite only (migrations 0009 and 0010).
DIALECT_ONLY: set[str] = {
    "tasks.claim_mark",
    "tasks.claim_read",
    "tasks.claim_now",
    "tasks.copy",
    "tasks.insert_one",
    "tasks.insert_unique_one",
    "tasks.intake",
    "tasks.intake_span",
    "tasks.admit",
    "tasks.admitted",
    "messages.intake_post",
    "messages.intake_stored",
    "messages.intake_span",
    "messages.admit_count",
    "messages.admit",
    "messages.admitted",
}


def test_parse_splits_named_blocks_and_drops_comment_lines() -> None:
    found = parse(
        "-- name: a\n-- what a does\nSELECT 1;\n\n-- name: b\nSELECT 2;\n", "x.sql"
    )
    assert found == {"a": "SELECT 1", "b": "SELECT 2"}


def test_parse_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="twice"):
        parse("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "x.sql")


def test_parse_refuses_empty_queries() -> None:
    with pytest.raises(ValueError, match="empty"):
        parse("-- name: a\n-- only a comment\n", "x.sql")


def test_both_dialects_define_the_same_queries() -> None:
    sqlite, postgres = set(load("sqlite")), set(load("postgres"))
    assert sqlite - DIALECT_ONLY == postgres - DIALECT_ONLY


def test_migrations_are_numbered_in_lockstep() -> None:
    sqlite = [(v, n) for v, n, _ in migrations("sqlite")]
    postgres = [(v, n) for v, n, _ in migrations("postgres")]
    assert sqlite == postgres
    assert [v for v, _ in sqlite] == list(range(1, len(sqlite) + 1))


def test_a_first_post_can_drop_its_on_conflict_line() -> None:
    """MessageStore.post removes this line on a first try: it must be there to remove."""
    from workhorse.storage.messages import _SKIP_STORED

    assert load("postgres")["messages.post"].count(_SKIP_STORED) == 1
