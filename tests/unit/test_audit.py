"""Audit records, lifecycle events and corrections in the record store's database,
and ResolveHandoff's true_intent turning into a correction."""

from __future__ import annotations

import pytest

from aftercare.v1 import agent_pb2
from server.api.agent import AgentServicer
from server.errors import InvalidInput, NotFound
from server.records.audit import AuditLog, read_corrections
from server.records.drafts import DraftStore
from server.records.store import RecordStore
from server.records.types import DecisionRecord, Handoff


def _decision(i: int, text: str) -> DecisionRecord:
    return DecisionRecord(decision_id=f"d{i}", conversation_id="c", customer_id="C1",
                          channel="chat", started_at="2026-12-01T08:00:00.000+00:00",
                          redacted_input=text, intent="order_status", outcome="completed")


async def _store(records_url: str) -> tuple[RecordStore, AuditLog]:
    store = RecordStore(url=records_url)
    await store.start()
    audit = AuditLog(store)
    return store, audit


async def test_corrections_are_deduplicated_redacted_and_readable_offline(
        records_url: str) -> None:
    store, audit = await _store(records_url)
    await store.submit_decision(_decision(1, "where is my order [ORDER_ID]"))
    await store.submit_decision(_decision(2, "Where is   my order [ORDER_ID]"))
    first = await audit.add_correction("d1", "cancel_order", "wrong intent", "agent-1")
    same_text = await audit.add_correction("d2", "cancel_order", "", "agent-2")
    assert not first[1] and same_text == (first[0], True)  # same text and label: once
    other = await audit.add_correction("d2", "refund_status", "", "agent-2")
    assert not other[1] and other[0] != first[0]
    with pytest.raises(NotFound):
        await audit.add_correction("d9", "cancel_order", "", "agent-1")
    with pytest.raises(InvalidInput):
        await audit.add_correction("d1", "not a label!", "", "agent-1")
    stored = await audit.corrections()
    assert [(c.text, c.true_intent, c.actor) for c in stored] == [
        ("where is my order [ORDER_ID]", "cancel_order", "agent-1"),
        ("Where is   my order [ORDER_ID]", "refund_status", "agent-2")]
    assert await audit.corrections(since="2999") == []
    await store.close()
    offline = read_corrections("", url=records_url)
    assert [c.seq for c in offline] == [c.seq for c in stored]


async def test_audit_records_and_lifecycle_events_round_trip(records_url: str) -> None:
    store, audit = await _store(records_url)
    await audit.record("ipv4:10.0.0.1:5", "ActivateModel", 'name: "m" version: 2', "OK")
    await audit.lifecycle_event("m", "activated", "m/1 -> m/2", "ipv4:10.0.0.1:5")
    await audit.lifecycle_event("other", "loaded", "other/1", "startup")
    [record] = await audit.audit_records()
    assert (record.actor, record.action, record.result) == ("ipv4:10.0.0.1:5",
                                                            "ActivateModel", "OK")
    events = await audit.lifecycle_events("m")
    assert [(e.kind, e.detail) for e in events] == [("activated", "m/1 -> m/2")]
    await store.close()


async def test_resolve_handoff_with_true_intent_stores_a_correction(
        records_url: str) -> None:
    store, audit = await _store(records_url)
    handoff = Handoff(handoff_id="h1", decision_id="d1", conversation_id="c",
                      customer_id="C1", state="pending", reason="asked_for_human",
                      created_at="2026-12-01T08:00:00")
    await store.submit_decision(_decision(1, "I want my money back"), handoff=handoff)
    agent = AgentServicer(store, DraftStore(store), audit)
    await agent.ClaimHandoff(agent_pb2.ClaimHandoffRequest(handoff_id="h1", agent_id="a7"),
                             None)  # type: ignore[arg-type]
    bad = agent_pb2.ResolveHandoffRequest(handoff_id="h1", agent_id="a7", reply="done",
                                          true_intent="bad label")
    with pytest.raises(InvalidInput):
        await agent.ResolveHandoff(bad, None)  # type: ignore[arg-type]
    assert (await store.list_handoffs("claimed"))[0].handoff_id == "h1"  # unchanged
    request = agent_pb2.ResolveHandoffRequest(handoff_id="h1", agent_id="a7", reply="done",
                                              true_intent="refund_status")
    resolved = await agent.ResolveHandoff(request, None)  # type: ignore[arg-type]
    assert resolved.state == "resolved"
    [correction] = await audit.corrections()
    assert (correction.decision_id, correction.true_intent, correction.actor) == (
        "d1", "refund_status", "a7")
    assert correction.text == "I want my money back"
    await store.close()
