"""PostgreSQL connections give up on a silent network within seconds, not the
kernel's quarter of an hour (see `TCP_SETTINGS`)."""

from __future__ import annotations

from workhorse.storage.postgres.database import (
    TCP_SETTINGS,
    PostgresDatabase,
    with_tcp_settings,
)


def test_tcp_settings_are_added_unless_the_url_sets_them() -> None:
    base = "postgresql://postgres@db.example:5432/app"
    assert {
        k: v for k, v in _params(with_tcp_settings(base)).items() if k in TCP_SETTINGS
    } == TCP_SETTINGS
    own = _params(with_tcp_settings(base + "?tcp_user_timeout=60000&keepalives=0"))
    assert (own["tcp_user_timeout"], own["keepalives"]) == ("60000", "0")
    assert own["keepalives_idle"] == TCP_SETTINGS["keepalives_idle"]


def test_pooled_connections_carry_them(pg_url: str) -> None:
    db = PostgresDatabase(pg_url)
    try:
        with db.pool.connection() as conn:
            params = conn.info.get_parameters()
        for key, value in TCP_SETTINGS.items():
            assert params[key] == value, key
    finally:
        db.close()


def _params(conninfo: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    return {k: str(v) for k, v in conninfo_to_dict(conninfo).items()}


def test_sessions_get_the_server_side_settings_unless_configured(pg_url: str) -> None:
    db = PostgresDatabase(pg_url)
    try:
        with db.pool.connection() as conn:
            row = conn.execute(
                "SELECT current_setting('tcp_keepalives_idle') AS idle,"
                " current_setting('tcp_user_timeout') AS user_timeout,"
                " current_setting('idle_in_transaction_session_timeout') AS idle_tx"
            ).fetchone()
    finally:
        db.close()
    assert row == {"idle": "5", "user_timeout": "10000", "idle_tx": "15s"}

    own = (
        pg_url
        + ("&" if "?" in pg_url else "?")
        + ("options=-c%20idle_in_transaction_session_timeout%3D5min")
    )
    db = PostgresDatabase(own)
    try:
        with db.pool.connection() as conn:
            row = conn.execute(
                "SELECT current_setting('idle_in_transaction_session_timeout') AS idle_tx"
            ).fetchone()
    finally:
        db.close()
    assert row == {"idle_tx": "5min"}
