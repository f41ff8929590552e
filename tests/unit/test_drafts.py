"""Assist-mode drafts: the route rule, the drafts table, review once, rates per intent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.config import load_config
from server.errors import Conflict, InvalidInput, NotFound
from server.pipeline.assist import draft_of, route_for
from server.records.drafts import Draft, DraftStore, review_rates
from server.records.sql import connect_sync
from server.records.store import RecordStore
from server.records.types import DecisionRecord


@pytest.fixture
async def stores(records_url: str) -> AsyncIterator[tuple[RecordStore, DraftStore]]:
    records = RecordStore(url=records_url)
    await records.start()
    drafts = DraftStore(records)
    yield records, drafts
    await records.close()


def _draft(i: int, intent: str = "order_status", channel: str = "email") -> Draft:
    return Draft(decision_id=f"d{i}", conversation_id=f"c{i}", customer_id="C1",
                 intent=intent, channel=channel, created_at=f"2026-11-29T10:00:{i:02d}.000Z",
                 text=f"answer {i}")


def test_only_automated_answers_on_assist_channels_become_drafts() -> None:
    channels = load_config(None, {"channels": {"email": {"mode": "assist"}}}, environ={}).channels
    assert route_for("automated", "email", channels) == "draft"
    assert route_for("human", "email", channels) == "human"  # a handoff stays a handoff
    assert route_for("automated", "chat", channels) == "automated"
    rec = DecisionRecord(decision_id="d1", conversation_id="c1", customer_id="C1",
                         channel="email", started_at="t0", finished_at="t1",
                         intent="refund_status", final_text="Your refund is on its way.")
    assert draft_of(rec) == Draft(decision_id="d1", conversation_id="c1", customer_id="C1",
                                  intent="refund_status", channel="email", created_at="t1",
                                  text="Your refund is on its way.")


async def test_drafts_are_listed_by_state_intent_and_channel(
        stores: tuple[RecordStore, DraftStore]) -> None:
    _, drafts = stores
    for i, (intent, channel) in enumerate([("order_status", "email"), ("return_item", "email"),
                                           ("order_status", "social")]):
        await drafts.submit(_draft(i, intent, channel))
    assert [d.decision_id for d in await drafts.list_drafts()] == ["d0", "d1", "d2"]
    assert [d.decision_id for d in await drafts.list_drafts(intent="order_status")] == \
        ["d0", "d2"]
    assert [d.decision_id for d in await drafts.list_drafts(channel="social")] == ["d2"]
    assert [d.decision_id for d in await drafts.list_drafts(limit=1)] == ["d0"]
    assert await drafts.list_drafts("accepted") == []
    with pytest.raises(InvalidInput):
        await drafts.list_drafts("approved")
    got = await drafts.get("d1")
    assert (got.state, got.text, got.agent_id, got.reviewed_at) == ("pending", "answer 1", "",
                                                                   "")


async def test_a_draft_is_reviewed_once(stores: tuple[RecordStore, DraftStore]) -> None:
    _, drafts = stores
    await drafts.submit(_draft(1))
    await drafts.submit(_draft(2))
    with pytest.raises(InvalidInput, match="verdict"):
        await drafts.review("d1", "agent-7", "approved")
    with pytest.raises(InvalidInput, match="edited_text"):
        await drafts.review("d1", "agent-7", "edited", "  ")
    with pytest.raises(InvalidInput, match="agent_id"):
        await drafts.review("d1", "", "accepted")
    with pytest.raises(NotFound):
        await drafts.review("nope", "agent-7", "accepted")
    edited = await drafts.review("d1", "agent-7", "edited", "Better words.")
    assert (edited.state, edited.agent_id, edited.edited_text, edited.text) == (
        "edited", "agent-7", "Better words.", "answer 1")
    assert edited.reviewed_at
    with pytest.raises(Conflict, match="already edited"):
        await drafts.review("d1", "agent-8", "accepted")
    assert (await drafts.review("d2", "agent-7", "rejected")).state == "rejected"
    assert await drafts.list_drafts() == []


async def test_review_rates_per_intent_and_the_table_the_kpi_reads(
        stores: tuple[RecordStore, DraftStore], records_url: str) -> None:
    records, drafts = stores
    verdicts = [("order_status", "accepted"), ("order_status", "accepted"),
                ("order_status", "edited"), ("order_status", "rejected"),
                ("return_item", "edited"), ("return_item", "pending")]
    for i, (intent, verdict) in enumerate(verdicts):
        await drafts.submit(_draft(i, intent))
        if verdict != "pending":
            await drafts.review(f"d{i}", "a1", verdict, "x" if verdict == "edited" else "")
    rates = {r.intent: r for r in await drafts.rates()}
    assert (rates["order_status"].reviewed, rates["order_status"].acceptance_rate,
            rates["order_status"].edit_rate) == (4, 0.5, 0.25)
    assert (rates["return_item"].reviewed, rates["return_item"].acceptance_rate,
            rates["return_item"].edit_rate) == (1, 0.0, 1.0)
    assert review_rates([("x", "pending", 3)]) == []
    await records.flush_pending()
    # The KPI side reads the table directly: accepted / (accepted + edited + rejected).
    with connect_sync(records_url, "") as db:
        acc, reviewed = db.execute(
            "SELECT SUM(CASE WHEN state = 'accepted' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN state IN ('accepted','edited','rejected') THEN 1 ELSE 0 END) "
            "FROM drafts").fetchone()
        cols = {d[0] for d in db.execute("SELECT * FROM drafts LIMIT 0").description}
    assert (acc, reviewed) == (2, 5)
    assert {"decision_id", "conversation_id", "customer_id", "intent", "channel", "state",
            "agent_id", "created_at", "reviewed_at", "text", "edited_text"} <= cols


async def test_drafts_survive_a_restart(records_url: str) -> None:
    records = RecordStore(url=records_url)
    await records.start()
    drafts = DraftStore(records)
    await drafts.submit(_draft(1))
    await records.close()
    records = RecordStore(url=records_url)
    await records.start()
    drafts = DraftStore(records)
    assert (await drafts.review("d1", "a1", "accepted")).state == "accepted"
    await records.close()
