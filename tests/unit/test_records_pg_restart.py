"""A PostgreSQL restart under a running record store: the calls made while it is down
are UNAVAILABLE (never a lost acknowledgement), and the store recovers by itself once
the database is back; no record acknowledged before the restart is lost."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from server.errors import Unavailable
from server.records.store import RecordStore
from server.records.types import DecisionRecord
from tests.pg import PgCluster, running_cluster


@pytest.fixture()
def own_cluster() -> Iterator[PgCluster]:
    with running_cluster() as cluster:  # its own: this test stops and starts it
        yield cluster


def _decision(i: int) -> DecisionRecord:
    return DecisionRecord(decision_id=f"d{i}", conversation_id="c", customer_id="C1",
                          channel="chat", started_at=f"2026-12-01T10:00:{i:02d}.000+00:00",
                          intent="order_status", route="automated", outcome="completed")


async def test_the_store_survives_a_database_restart(own_cluster: PgCluster) -> None:
    store = RecordStore(url=own_cluster.create_database())
    await store.start()
    for i in range(5):
        await store.commit_decision(_decision(i))
    own_cluster.pg_ctl("stop", "-m", "fast")
    with pytest.raises(Unavailable):  # down: a clear error, not a hang or a silent loss
        await store.commit_decision(_decision(5))
    own_cluster.pg_ctl("start")
    recovered = False
    for i in range(6, 12):  # the pool replaces the broken connections as they fail
        with contextlib.suppress(Unavailable):
            await store.commit_decision(_decision(i))
            recovered = True
    assert recovered
    await store.commit_decision(_decision(20))
    assert {d for d in await store.list_decision_ids()} >= {f"d{i}" for i in range(5)} | {"d20"}
    await store.close()
