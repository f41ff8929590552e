"""Confirmed citations: only answers an agent accepted or a customer marked resolved
teach the intent affinity which documents answer an intent."""

from __future__ import annotations

from server.records.citations import confirmed_citations
from server.records.drafts import Draft, DraftStore
from server.records.store import RecordStore
from server.records.types import DecisionRecord, Feedback, PassageUse


def _decision(i: int, intent: str, *sources: str) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d{i}", conversation_id="c", customer_id="C1", channel="email",
        started_at=f"2026-11-29T10:00:{i:02d}.000+00:00", intent=intent, route="draft",
        outcome="completed",
        passages=[PassageUse(f"{s}#{n}", s, 0.5) for s in sources for n in range(2)])


async def test_only_confirmed_answers_count(records_url: str) -> None:
    records = RecordStore(url=records_url)
    await records.start()
    assert await confirmed_citations(records) == {}  # no drafts table yet: nothing
    drafts = DraftStore(records)
    cases = [("missing_package", ("hc-trace", "hc-couriers"), "accepted"),
             ("missing_package", ("hc-trace",), "accepted"),
             ("missing_package", ("hc-about",), "rejected"),
             ("missing_package", ("hc-about",), "edited"),
             ("return_item", ("hc-rma",), "pending"),
             ("return_item", ("hc-rma",), "resolved"),  # no draft; the customer confirmed
             ("return_item", ("hc-about",), "unresolved")]
    for i, (intent, sources, verdict) in enumerate(cases):
        await records.submit_decision(_decision(i, intent, *sources))
        if verdict in ("accepted", "rejected", "edited", "pending"):
            await drafts.submit(Draft(decision_id=f"d{i}", intent=intent, text="t"))
            if verdict != "pending":
                await drafts.review(f"d{i}", "a1", verdict, "x" if verdict == "edited" else "")
        else:
            await records.add_feedback(Feedback(feedback_id=f"f{i}", decision_id=f"d{i}",
                                                resolved=verdict == "resolved", csat=5))
    counts = await confirmed_citations(records)
    assert counts == {("missing_package", "hc-trace"): 2, ("missing_package", "hc-couriers"): 1,
                      ("return_item", "hc-rma"): 1}
    assert sum((await confirmed_citations(records, limit=1)).values()) == 1  # latest first
    await records.close()
