"""Two record stores on one database, as two replicas would be: races people start
(two agents claiming one handoff, two approvals, two reviews) have exactly one winner,
feedback sent twice is one record, migrations are versioned and applied once. Runs on
both backends (the `records_url` fixture)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from server.errors import Conflict
from server.governance.pii import PiiDetector
from server.pipeline.feedback import FeedbackInput, FeedbackService
from server.records.drafts import Draft, DraftStore
from server.records.migrations import MIGRATIONS, current_version
from server.records.sql import connect_sync
from server.records.store import RecordStore
from server.records.types import DecisionRecord, Handoff, PendingAction


def _decision(i: int) -> DecisionRecord:
    return DecisionRecord(decision_id=f"d{i}", conversation_id=f"c{i}", customer_id="C1",
                          channel="chat", started_at=f"2026-12-01T10:00:{i:02d}.000+00:00",
                          intent="refund_request", route="handoff", outcome="handed_off")


@pytest.fixture
async def replicas(records_url: str) -> AsyncIterator[tuple[RecordStore, RecordStore]]:
    a, b = RecordStore(url=records_url), RecordStore(url=records_url)
    await asyncio.gather(a.start(), b.start())  # both migrate at once: applied once
    yield a, b
    await asyncio.gather(a.close(), b.close())


async def test_migrations_are_versioned_and_applied_once(
        replicas: tuple[RecordStore, RecordStore], records_url: str) -> None:
    with connect_sync(records_url, "") as db:
        assert current_version(db) == MIGRATIONS[-1].version
        rows = db.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [m.version for m in MIGRATIONS]


async def test_two_agents_claiming_one_handoff_on_two_replicas_one_wins(
        replicas: tuple[RecordStore, RecordStore]) -> None:
    a, b = replicas
    for i in range(10):
        h = Handoff(handoff_id=f"h{i}", decision_id=f"d{i}", conversation_id=f"c{i}",
                    customer_id="C1",
                    state="pending", reason="asked_for_human", created_at=f"2026-12-01T10:{i}")
        await a.commit_decision(_decision(i), handoff=h)
    results = await asyncio.gather(
        *(store.transition_handoff(f"h{i}", agent, "claimed")
          for i in range(10) for store, agent in ((a, "agent-a"), (b, "agent-b"))),
        return_exceptions=True)
    for i in range(10):
        pair = results[2 * i:2 * i + 2]
        assert sum(isinstance(r, Conflict) for r in pair) == 1, pair
        winner = next(r for r in pair if isinstance(r, Handoff))
        # What both replicas now read agrees with the winner.
        claimed = {h.handoff_id: h.agent_id for h in await b.list_handoffs("claimed")}
        assert claimed[f"h{i}"] == winner.agent_id
    assert await a.list_handoffs("pending") == []


async def test_an_approval_is_decided_once_across_replicas(
        replicas: tuple[RecordStore, RecordStore]) -> None:
    a, b = replicas
    actions = [PendingAction(action_id=f"a{i}", decision_id="d1", kind="refund",
                             state="pending", amount=10.0, created_at="2026-12-01T10:00")
               for i in range(8)]
    await a.commit_decision(_decision(1), actions=actions)
    results = await asyncio.gather(
        *(store.decide_action(f"a{i}", agent, approve=agent == "x")
          for i in range(8) for store, agent in ((a, "x"), (b, "y"))),
        return_exceptions=True)
    assert sum(isinstance(r, Conflict) for r in results) == 8
    assert sum(isinstance(r, PendingAction) for r in results) == 8
    assert await b.list_actions() == []


async def test_a_draft_is_reviewed_once_across_replicas(
        replicas: tuple[RecordStore, RecordStore]) -> None:
    a, b = replicas
    da, db = DraftStore(a), DraftStore(b)
    for i in range(6):
        await a.commit_decision(_decision(i))
        await da.submit(Draft(decision_id=f"d{i}", intent="x", created_at=f"2026-12-01T{i}"))
    results = await asyncio.gather(
        *(store.review(f"d{i}", agent, verdict)
          for i in range(6) for store, agent, verdict in ((da, "a1", "accepted"),
                                                          (db, "a2", "rejected"))),
        return_exceptions=True)
    assert sum(isinstance(r, Conflict) for r in results) == 6
    states = {d.decision_id for d in await db.list_drafts("accepted")} | {
        d.decision_id for d in await da.list_drafts("rejected")}
    assert states == {f"d{i}" for i in range(6)}


async def test_feedback_sent_twice_is_one_record(
        replicas: tuple[RecordStore, RecordStore]) -> None:
    a, b = replicas
    await a.commit_decision(_decision(1))
    detector = PiiDetector()
    fa, fb = FeedbackService(a, detector), FeedbackService(b, detector)
    same = FeedbackInput(decision_id="d1", csat=5, resolved=True, text="thanks")
    ids = await asyncio.gather(fa.submit(same), fb.submit(same), fa.submit(same))
    assert len(set(ids)) == 1
    other = await fb.submit(FeedbackInput(decision_id="d1", converted_order_id="O9"))
    assert other != ids[0]
    got = await a.list_feedback("d1")
    assert sorted((f.csat, f.converted_order_id) for f in got) == [(0, "O9"), (5, "")]


async def test_a_decision_made_on_one_replica_is_read_on_the_other(
        replicas: tuple[RecordStore, RecordStore]) -> None:
    a, b = replicas
    await a.commit_decision(_decision(7))
    assert (await b.get_decision("d7")).intent == "refund_request"
