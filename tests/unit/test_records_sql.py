"""Where records live (`records.url`), the SQL both backends accept, and a database
that cannot be reached."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from server.errors import InvalidInput, Unavailable
from server.records.sql import (
    POSTGRESQL,
    SQLITE,
    Db,
    insert_ignore,
    parse_url,
    pg_sql,
    redact_url,
    upsert,
)
from server.records.store import RecordStore


def test_records_url_wins_over_path_and_names_the_backend() -> None:
    assert parse_url("", "var/a.sqlite") == (SQLITE, "var/a.sqlite")
    assert parse_url("sqlite:///var/b.sqlite", "var/a.sqlite") == (SQLITE, "var/b.sqlite")
    assert parse_url("sqlite:////abs/c.sqlite", "") == (SQLITE, "/abs/c.sqlite")
    url = "postgresql://app@db:5432/aftercare"
    assert parse_url(url, "var/a.sqlite") == (POSTGRESQL, url)
    for bad in ("mysql://x/y", "sqlite:///", "/just/a/path"):
        with pytest.raises(InvalidInput):
            parse_url(bad, "")


def test_passwords_never_reach_messages() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact_url("postgresql://app@db/x") == "postgresql://app@db/x"
    with pytest.raises(InvalidInput) as err:
        parse_url("mysql://app:s3cret@db/x", "")
    assert "s3cret" not in str(err.value)


def test_one_statement_for_both_dialects() -> None:
    assert upsert("t", ("k", "a", "b"), ("k",)) == (
        "INSERT INTO t (k, a, b) VALUES (?,?,?) ON CONFLICT (k) DO UPDATE SET "
        "a = excluded.a, b = excluded.b")
    assert insert_ignore("t", ("k", "a")) == (
        "INSERT INTO t (k, a) VALUES (?,?) ON CONFLICT DO NOTHING")
    assert pg_sql("SELECT x FROM t WHERE a = ? AND b LIKE '5%' LIMIT ?") == (
        "SELECT x FROM t WHERE a = %s AND b LIKE '5%%' LIMIT %s")


async def test_an_unreachable_database_is_unavailable_and_names_no_password() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = RecordStore(url=f"postgresql://app:s3cret@127.0.0.1:{port}/x")
    store.backend._timeout = 1.0  # type: ignore[attr-defined]
    with pytest.raises(Unavailable) as err:
        await store.start()
    assert "s3cret" not in str(err.value) and str(port) in str(err.value)
    await store.close()


@pytest.mark.parametrize("prepared", [True, False])
async def test_prepared_statements_can_be_turned_off_for_a_pooler(
        pg_cluster: Any, prepared: bool) -> None:
    store = RecordStore(url=pg_cluster.create_database(), pool_size=1,
                        prepared_statements=prepared)
    await store.start()
    for _ in range(8):  # psycopg prepares a statement from its 5th run on by default
        await store.list_handoffs()

    def prepared_here(db: Db) -> int:
        return int(db.execute("SELECT COUNT(*) FROM pg_prepared_statements").fetchone()[0])

    count = await store.run_in_db(prepared_here)
    assert (count > 0) == prepared
    await store.close()
