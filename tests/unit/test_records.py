"""Record store: decisions written off the loop, readable at once, handoff and action
state machines, feedback, repeat-contact counts, flush on close."""

from __future__ import annotations

import pytest

from server.errors import Conflict, InvalidInput, NotFound
from server.records.sql import connect_sync
from server.records.store import RecordStore
from server.records.types import DecisionRecord, Feedback, Handoff, PendingAction


def _decision(i: int, customer: str = "C1", orders: tuple[str, ...] = ()) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d{i}", conversation_id="conv", customer_id=customer, channel="chat",
        started_at=f"2026-11-29T10:00:{i:02d}.000+00:00", intent="order_status",
        route="automated", outcome="completed", order_refs=list(orders),
    )


async def test_decision_readable_before_and_after_commit(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    await store.submit_decision(_decision(1))
    assert (await store.get_decision("d1")).intent == "order_status"
    await store.flush_pending()
    assert (await store.get_decision("d1")).decision_id == "d1"
    with pytest.raises(NotFound):
        await store.get_decision("nope")
    with pytest.raises(InvalidInput):
        await store.get_decision("")
    await store.close()


async def test_close_flushes_every_queued_record(records_url: str) -> None:
    store = RecordStore(url=records_url, queue_size=8)
    await store.start()
    for i in range(50):  # more than the queue holds: back-pressure, nothing dropped
        await store.submit_decision(_decision(i))
    await store.close()
    with connect_sync(records_url, "") as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 50
        if db.dialect == "sqlite":
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_handoff_flow_pending_claimed_resolved(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    h = Handoff(handoff_id="h1", decision_id="d1", conversation_id="c", customer_id="C1",
                state="pending", reason="asked_for_human", created_at="2026-11-29T10:00:00")
    await store.submit_decision(_decision(1), handoff=h)
    assert [x.handoff_id for x in await store.list_handoffs()] == ["h1"]
    with pytest.raises(Conflict):
        await store.transition_handoff("h1", "agent-7", "resolved", "done")
    claimed = await store.transition_handoff("h1", "agent-7", "claimed")
    assert claimed.state == "claimed" and claimed.agent_id == "agent-7"
    with pytest.raises(Conflict):
        await store.transition_handoff("h1", "agent-8", "claimed")
    with pytest.raises(Conflict):
        await store.transition_handoff("h1", "agent-8", "resolved", "hi")
    with pytest.raises(InvalidInput):
        await store.transition_handoff("h1", "agent-7", "resolved", "  ")
    done = await store.transition_handoff("h1", "agent-7", "resolved", "Refund sent.")
    assert (done.state, done.reply) == ("resolved", "Refund sent.")
    assert await store.list_handoffs() == []
    assert [x.handoff_id for x in await store.list_handoffs("resolved")] == ["h1"]
    with pytest.raises(NotFound):
        await store.transition_handoff("h2", "agent-7", "claimed")
    await store.close()


async def test_action_approval_is_decided_once(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    a = PendingAction(action_id="a1", decision_id="d1", kind="refund_pending_approval",
                      state="pending", amount=420.0, created_at="2026-11-29T10:00:00")
    b = msgspec_replace(a, action_id="a2")
    await store.submit_decision(_decision(1), actions=[a, b])
    approved = await store.decide_action("a1", "agent-1", approve=True, note="ok")
    assert approved.state == "approved"
    rejected = await store.decide_action("a2", "agent-1", approve=False)
    assert rejected.state == "rejected"
    with pytest.raises(Conflict):
        await store.decide_action("a1", "agent-2", approve=False)
    assert await store.list_actions() == []
    await store.close()


def msgspec_replace(a: PendingAction, **kw: str) -> PendingAction:
    import msgspec

    return msgspec.structs.replace(a, **kw)


async def test_feedback_needs_a_known_decision(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    await store.submit_decision(_decision(1))
    await store.add_feedback(Feedback(feedback_id="f1", decision_id="d1", csat=5, resolved=True))
    assert [f.csat for f in await store.list_feedback("d1")] == [5]
    with pytest.raises(NotFound):
        await store.add_feedback(Feedback(feedback_id="f2", decision_id="zz", csat=1))
    await store.close()



def test_the_store_implements_the_records_interface(records_url: str) -> None:
    from server.records.base import Records

    assert isinstance(RecordStore(url=records_url), Records)
