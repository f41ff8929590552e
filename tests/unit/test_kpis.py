"""KPI arithmetic on hand-made rows: each definition of server/records/kpis.py."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from server.errors import InvalidInput
from server.records.kpis import (
    KpiQuery,
    KpiRows,
    OrderBook,
    ShopOrder,
    compute,
    load_rows,
    parse_time,
)
from server.records.types import Feedback, Handoff


def at(hour: int, minute: int = 0) -> str:
    return datetime(2026, 12, 1, hour, minute, tzinfo=UTC).isoformat(timespec="milliseconds")


def fb(decision_id: str, created_at: str, **kw: object) -> tuple[str, Feedback]:
    return decision_id, Feedback(feedback_id=f"fb-{decision_id}-{created_at}",
                                 decision_id=decision_id, created_at=created_at, **kw)


def ho(decision_id: str, reason: str, state: str = "pending", updated_at: str = ""
       ) -> tuple[str, Handoff]:
    return decision_id, Handoff(handoff_id=f"ho-{decision_id}", decision_id=decision_id,
                                conversation_id="", customer_id="", state=state,
                                reason=reason, updated_at=updated_at)


ROWS = KpiRows(
    decisions=[
        # A: one message, resolved in feedback 1 h later -> first-contact resolution.
        ("dA1", "A", "C1", at(8), "order_status"),
        # B: two messages; resolved after the first, then a new message -> reopened.
        ("dB1", "B", "C2", at(9), "refund_status"),
        ("dB2", "B", "C2", at(11), "refund_status"),
        # C: handed off, resolved by an agent 30 min later; converted (feedback order).
        ("dC1", "C", "C3", at(10), "complaint"),
        # D: no conversation id: its own conversation; escalated, never resolved.
        ("dD1", "", "C4", at(12), "complaint"),
    ],
    handoffs=[ho("dC1", "asked_for_human", "resolved", at(10, 30)),
              ho("dD1", "low_confidence")],
    feedback=[fb("dA1", at(9), csat=5, nps=10, resolved=True),
              fb("dB1", at(10), csat=2, nps=6, resolved=True),
              fb("dC1", at(12), nps=8, converted_order_id="O-9"),
              fb("dD1", at(13), nps=3)],
    drafts={"accepted": 3, "edited": 1, "rejected": 2, "pending": 7},
)


def test_each_kpi_by_hand() -> None:
    orders = OrderBook([
        ShopOrder("O-9", "C3", datetime(2026, 11, 1, tzinfo=UTC), 40.0),
        # C1 orders 2 days after conversation A: attributed; C2's order is too late.
        ShopOrder("O-1", "C1", datetime(2026, 12, 3, tzinfo=UTC), 25.5),
        ShopOrder("O-2", "C2", datetime(2026, 12, 20, tzinfo=UTC), 99.0),
        # Before the conversation: not attributed.
        ShopOrder("O-3", "C4", datetime(2026, 11, 30, tzinfo=UTC), 10.0),
    ])
    k = compute(ROWS, orders, attribution_days=7)
    assert k.conversations == 4 and k.responses == 5
    assert k.escalation_rate == pytest.approx(2 / 4)
    assert k.containment_rate == pytest.approx(1 - 2 / 4)
    assert k.escalations_by_reason == {"asked_for_human": 1, "low_confidence": 1}
    assert k.csat_avg == pytest.approx((5 + 2) / 2) and k.csat_count == 2
    # Scores 10, 6, 8, 3: one promoter, two detractors.
    assert k.nps == pytest.approx(100 * (1 / 4 - 2 / 4)) and k.nps_count == 4
    # Resolved in feedback: A (one message, no handoff) and B (two messages).
    assert k.fcr_rate == pytest.approx(1 / 2)
    # Resolution times: A 1 h, B 1 h, C 30 min -> p50 3600, p90 3600.
    assert k.resolution_time_p50_s == pytest.approx(3600.0)
    assert k.resolution_time_p90_s == pytest.approx(3600.0)
    # Converted: C (feedback, O-9 total 40) and A (O-1 within 7 days, 25.5).
    assert k.conversion_rate == pytest.approx(2 / 4)
    assert k.post_interaction_revenue == pytest.approx(65.5)
    # Resolved: A, B, C; B has a message after its resolution.
    assert k.reopen_rate == pytest.approx(1 / 3)
    assert k.draft_acceptance_rate == pytest.approx(3 / (3 + 1 + 2))
    assert k.by_intent_containment == {"complaint": 0.0, "order_status": 1.0,
                                       "refund_status": 1.0}


def test_resolution_percentiles_interpolate() -> None:
    rows = KpiRows(
        decisions=[(f"d{i}", f"c{i}", "", at(8), "x") for i in range(5)],
        handoffs=[],
        feedback=[fb(f"d{i}", at(8, 10 * (i + 1)), resolved=True) for i in range(5)],
        drafts={})
    k = compute(rows)
    # 600, 1200, 1800, 2400, 3000 s
    assert k.resolution_time_p50_s == pytest.approx(1800.0)
    assert k.resolution_time_p90_s == pytest.approx(2760.0)
    assert k.fcr_rate == 1.0 and k.reopen_rate == 0.0


def test_nothing_gives_zeros() -> None:
    k = compute(KpiRows([], [], [], {}))
    assert k.conversations == 0 and k.containment_rate == 0.0 and k.nps == 0.0
    assert k.draft_acceptance_rate == 0.0 and k.by_intent_containment == {}


def test_parse_time_normalises_to_the_records_format() -> None:
    assert parse_time("2026-12-01", "since") == "2026-12-01T00:00:00.000+00:00"
    assert parse_time("2026-12-01T10:00:00+02:00", "since") == "2026-12-01T08:00:00.000+00:00"
    assert parse_time("2026-12-01T08:00:00Z", "since") == "2026-12-01T08:00:00.000+00:00"
    assert parse_time("", "since") == ""
    with pytest.raises(InvalidInput, match="since"):
        parse_time("last tuesday", "since")


def test_load_rows_filters_the_window() -> None:
    from server.records.migrations import migrate
    from server.records.sql import SqliteDb

    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(SqliteDb(conn))
    for d, ch, t in (("d1", "chat", at(8)), ("d2", "email", at(9)), ("d3", "chat", at(10))):
        conn.execute("INSERT INTO decisions VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (d, d, "C1", ch, t, t, "order_status", "automated", "completed", b"{}"))
    db = SqliteDb(conn)
    rows = load_rows(db, KpiQuery(since=at(8, 30), channel="chat"))
    assert [r[0] for r in rows.decisions] == ["d3"]
    assert rows.drafts == {}
    conn.execute("INSERT INTO drafts (decision_id, channel, intent, state, created_at) "
                 "VALUES ('d3', 'chat', 'order_status', 'accepted', ?)", (at(10),))
    assert load_rows(db, KpiQuery(until=at(11))).drafts == {"accepted": 1}
    assert load_rows(db, KpiQuery(until=at(9, 30))).drafts == {}
