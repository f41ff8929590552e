"""RetentionLog: open issues read from the record store, issued actions for the cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.records.retention import RetentionLog
from server.records.store import RecordStore, utcnow
from server.records.types import DecisionRecord, Handoff, PendingAction

COMPLAINTS = ["complaint", "damaged_item"]


def _decision(did: str, customer: str, intent: str, started_at: str = "") -> DecisionRecord:
    return DecisionRecord(decision_id=did, conversation_id="conv", customer_id=customer,
                          channel="chat", started_at=started_at or utcnow(), intent=intent,
                          route="automated", outcome="completed")


def _handoff(did: str, customer: str, intent: str) -> Handoff:
    return Handoff(handoff_id=f"ho-{did}", decision_id=did, conversation_id="conv",
                   customer_id=customer, state="pending", reason="asked_for_human",
                   intent=intent, created_at=utcnow())


async def test_open_issues_from_handoffs_actions_and_recent_complaints(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    log = RetentionLog(store)
    await store.submit_decision(_decision("d1", "c-complaint", "complaint"),
                                _handoff("d1", "c-complaint", "complaint"))
    await store.submit_decision(_decision("d2", "c-handoff", "order_status"),
                                _handoff("d2", "c-handoff", "order_status"))
    await store.submit_decision(
        _decision("d3", "c-approval", "refund_status"),
        actions=[PendingAction(action_id="a1", decision_id="d3", kind="refund_pending_approval",
                               state="pending", customer_id="c-approval", created_at=utcnow())])
    await store.submit_decision(_decision("d4", "c-said-damaged", "damaged_item"))
    old = (datetime.now(UTC) - timedelta(days=90)).isoformat(timespec="milliseconds")
    await store.submit_decision(_decision("d5", "c-old-complaint", "complaint", old))
    since = (datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="milliseconds")
    issues = await log.open_issues(COMPLAINTS, since)
    assert issues.complaints == {"c-complaint", "c-said-damaged"}
    assert issues.handoffs == {"c-handoff"}
    assert issues.approvals == {"c-approval"}
    one = await log.open_issues(COMPLAINTS, since, "c-handoff")
    assert one.handoffs == {"c-handoff"} and not one.complaints and not one.approvals
    # Resolving the handoff closes the issue.
    await store.transition_handoff("ho-d2", "agent-1", "claimed")
    assert (await log.open_issues(COMPLAINTS, since)).handoffs == {"c-handoff"}
    await store.transition_handoff("ho-d2", "agent-1", "resolved", "done")
    assert not (await log.open_issues(COMPLAINTS, since)).handoffs
    await store.close()


async def test_issued_actions_are_counted_once_per_nudge_in_the_window(records_url: str) -> None:
    store = RecordStore(url=records_url)
    await store.start()
    log = RetentionLog(store)
    now = datetime(2026, 11, 15, 12, tzinfo=UTC)
    k1 = ("c1", "replenish", "p1", "O1", "2026-11-10T00:00:00+00:00")
    k2 = ("c1", "cross_sell", "p2", "O1", "2026-11-12T00:00:00+00:00")
    k3 = ("c1", "follow_up", "", "O1", "2026-11-12T00:00:00+00:00")
    assert await log.record([(k1, "push"), (k2, "push"), (k3, "email")], now) == 3
    assert await log.record([(k1, "push")], now) == 0  # the same nudge again
    await log.record([(("c2", "win_back", "", "O9", "2026-10-01T00:00:00+00:00"), "email")],
                     now - timedelta(days=30))  # outside the window
    got = await log.issued(["c1", "c2", "c3"], now - timedelta(days=7), now)
    assert got == {"c1": {"push": {k1, k2}, "email": {k3}}}
    assert await log.issued(["c1"], now, now + timedelta(days=1)) == {}
    await store.close()
