"""Business KPIs over the decision records, handoffs, feedback and assist drafts.

Definitions (the README's "KPIs" section says the same):
- conversations: distinct conversation ids among decisions in the window (a decision
  without one is its own conversation); responses: decisions.
- escalation_rate: conversations with at least one handoff / conversations;
  containment_rate = 1 - escalation_rate; escalations_by_reason: handoffs by reason.
- csat_avg / csat_count: mean and count of the csat values (1-5) given in feedback on
  decisions in the window; nps: 100 x (share of 9-10 - share of 0-6) over the nps given.
- a conversation is resolved at its first `resolved` feedback or its first handoff an
  agent resolved, whichever is earlier. fcr_rate: conversations marked resolved in
  feedback with exactly one customer message (decision) and no handoff / conversations
  marked resolved in feedback. Resolution time: first decision -> resolution, p50/p90
  (linear interpolation) in seconds over resolved conversations.
- a conversation converted when feedback names a `converted_order_id`, or the customer
  placed an order in the shop data after the conversation started and within
  `attribution_days` of its last message. conversion_rate: converted / conversations;
  post_interaction_revenue: the total of those orders (each order once).
- reopen_rate: resolved conversations with a customer message after the resolution /
  resolved conversations.
- draft_acceptance_rate: accepted / (accepted + edited + rejected) assist drafts; 0
  when none were reviewed.
- by_intent_containment: containment of the conversations grouped by the intent of
  their first message.
Every rate is 0 when its denominator is 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np

from server.errors import InvalidInput
from server.records.sql import Db
from server.records.types import Feedback, Handoff


class KpiQuery(msgspec.Struct, frozen=True):
    since: str = ""  # ISO 8601; "" = all time
    until: str = ""
    channel: str = ""
    intent: str = ""


class Kpis(msgspec.Struct, kw_only=True):
    conversations: int = 0
    responses: int = 0
    containment_rate: float = 0.0
    escalation_rate: float = 0.0
    escalations_by_reason: dict[str, int] = {}
    csat_avg: float = 0.0
    csat_count: int = 0
    nps: float = 0.0
    nps_count: int = 0
    fcr_rate: float = 0.0
    resolution_time_p50_s: float = 0.0
    resolution_time_p90_s: float = 0.0
    conversion_rate: float = 0.0
    post_interaction_revenue: float = 0.0
    reopen_rate: float = 0.0
    draft_acceptance_rate: float = 0.0
    by_intent_containment: dict[str, float] = {}


@dataclass(frozen=True, slots=True)
class ShopOrder:
    order_id: str
    customer_id: str
    ordered_at: datetime
    total: float


class OrderBook:
    """The shop's orders by id and by customer (built once per snapshot)."""

    def __init__(self, orders: Iterable[ShopOrder]) -> None:
        self.by_id: dict[str, ShopOrder] = {}
        self.by_customer: dict[str, list[ShopOrder]] = {}
        for o in orders:
            self.by_id[o.order_id] = o
            self.by_customer.setdefault(o.customer_id, []).append(o)


def parse_time(value: str, what: str) -> str:
    """An ISO 8601 time (a date alone = its midnight; no zone = UTC) in the records'
    own format, so it compares as text with `started_at`."""
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InvalidInput(f"{what} is not an ISO 8601 time: {value!r}") from exc
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.isoformat(timespec="milliseconds")


def _ts(value: str) -> datetime:
    t = datetime.fromisoformat(value)
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


@dataclass(slots=True)
class _Conversation:
    customer_id: str
    first_at: str
    last_at: str
    first_intent: str
    messages: list[str] = field(default_factory=list)  # started_at of each decision
    handoffs: int = 0
    feedback_resolved_at: str = ""
    agent_resolved_at: str = ""
    converted_orders: set[str] = field(default_factory=set)
    any_converted_feedback: bool = False


@dataclass(slots=True)
class KpiRows:
    """What the database gives: one tuple per decision, handoff, feedback; draft counts."""

    decisions: list[tuple[str, str, str, str, str]]  # id, conversation, customer, at, intent
    handoffs: list[tuple[str, Handoff]]  # decision id, handoff
    feedback: list[tuple[str, Feedback]]  # decision id, feedback
    drafts: dict[str, int]  # state -> count


def load_rows(conn: Db, q: KpiQuery) -> KpiRows:
    """The rows in the window (runs on the record store's backend, off the loop)."""
    where, args = ["1 = 1"], []
    if q.since:
        where.append("d.started_at >= ?")
        args.append(q.since)
    if q.until:
        where.append("d.started_at < ?")
        args.append(q.until)
    if q.channel:
        where.append("d.channel = ?")
        args.append(q.channel)
    if q.intent:
        where.append("d.intent = ?")
        args.append(q.intent)
    cond = " AND ".join(where)
    decisions = conn.execute(
        "SELECT d.decision_id, d.conversation_id, d.customer_id, d.started_at, d.intent "
        f"FROM decisions d WHERE {cond} ORDER BY d.started_at", args).fetchall()
    handoffs = [(r[0], msgspec.json.decode(bytes(r[1]), type=Handoff)) for r in conn.execute(
        f"SELECT h.decision_id, h.record FROM handoffs h JOIN decisions d "
        f"ON d.decision_id = h.decision_id WHERE {cond}", args)]
    feedback = [(r[0], msgspec.json.decode(bytes(r[1]), type=Feedback)) for r in conn.execute(
        f"SELECT f.decision_id, f.record FROM feedback f JOIN decisions d "
        f"ON d.decision_id = f.decision_id WHERE {cond}", args)]
    dwhere, dargs = ["1 = 1"], []
    for col, op, value in (("created_at", ">=", q.since), ("created_at", "<", q.until),
                           ("channel", "=", q.channel), ("intent", "=", q.intent)):
        if value:
            dwhere.append(f"{col} {op} ?")
            dargs.append(value)
    drafts = dict(conn.execute(
        f"SELECT state, COUNT(*) FROM drafts WHERE {' AND '.join(dwhere)} GROUP BY state",
        dargs).fetchall())
    return KpiRows([tuple(r) for r in decisions], handoffs, feedback, drafts)


def _rate(num: float, den: float) -> float:
    return num / den if den else 0.0


def compute(rows: KpiRows, orders: OrderBook | None = None,
            attribution_days: float = 7.0) -> Kpis:
    """The KPIs of these rows (pure; see the module doc for each definition)."""
    convs: dict[str, _Conversation] = {}
    conv_of: dict[str, str] = {}
    for decision_id, conversation_id, customer_id, at, intent in rows.decisions:
        cid = conversation_id or decision_id
        conv_of[decision_id] = cid
        c = convs.get(cid)
        if c is None:
            c = convs[cid] = _Conversation(customer_id, at, at, intent)
        c.messages.append(at)
        c.last_at = max(c.last_at, at)
        if at < c.first_at:
            c.first_at, c.first_intent = at, intent
        c.customer_id = c.customer_id or customer_id
    reasons: Counter[str] = Counter()
    for decision_id, h in rows.handoffs:
        c = convs[conv_of[decision_id]]
        c.handoffs += 1
        reasons[h.reason] += 1
        if h.state == "resolved" and h.updated_at and (
                not c.agent_resolved_at or h.updated_at < c.agent_resolved_at):
            c.agent_resolved_at = h.updated_at
    csat: list[int] = []
    nps: list[int] = []
    for decision_id, fb in rows.feedback:
        c = convs[conv_of[decision_id]]
        if fb.csat:
            csat.append(fb.csat)
        if fb.nps is not None:
            nps.append(fb.nps)
        if fb.resolved and (not c.feedback_resolved_at or fb.created_at < c.feedback_resolved_at):
            c.feedback_resolved_at = fb.created_at
        if fb.converted_order_id:
            c.any_converted_feedback = True
            c.converted_orders.add(fb.converted_order_id)

    n = len(convs)
    escalated = sum(1 for c in convs.values() if c.handoffs)
    fb_resolved = [c for c in convs.values() if c.feedback_resolved_at]
    fcr = sum(1 for c in fb_resolved if len(c.messages) == 1 and not c.handoffs)
    resolved: list[tuple[_Conversation, str]] = []
    for c in convs.values():
        marks = [t for t in (c.feedback_resolved_at, c.agent_resolved_at) if t]
        if marks:
            resolved.append((c, min(marks)))
    durations = [(_ts(at) - _ts(c.first_at)).total_seconds() for c, at in resolved]
    reopened = sum(1 for c, at in resolved if any(m > at for m in c.messages))

    window = timedelta(days=attribution_days)
    converted, revenue_orders = 0, set()
    for c in convs.values():
        found = set(c.converted_orders)
        if orders is not None:
            start, end = _ts(c.first_at), _ts(c.last_at) + window
            found |= {o.order_id for o in orders.by_customer.get(c.customer_id, ())
                      if start < o.ordered_at <= end}
        if found:
            converted += 1
            revenue_orders |= found
    revenue = sum(orders.by_id[o].total for o in revenue_orders
                  if orders is not None and o in orders.by_id)

    by_intent: dict[str, list[int]] = {}
    for c in convs.values():
        counts = by_intent.setdefault(c.first_intent or "unknown", [0, 0])
        counts[0] += 1
        counts[1] += 1 if c.handoffs else 0
    reviewed = sum(rows.drafts.get(s, 0) for s in ("accepted", "edited", "rejected"))
    escalation = _rate(escalated, n)
    return Kpis(
        conversations=n, responses=len(rows.decisions),
        containment_rate=1.0 - escalation if n else 0.0, escalation_rate=escalation,
        escalations_by_reason=dict(reasons),
        csat_avg=_rate(sum(csat), len(csat)), csat_count=len(csat),
        nps=100.0 * _rate(sum(1 for s in nps if s >= 9) - sum(1 for s in nps if s <= 6),
                          len(nps)),
        nps_count=len(nps),
        fcr_rate=_rate(fcr, len(fb_resolved)),
        resolution_time_p50_s=float(np.percentile(durations, 50)) if durations else 0.0,
        resolution_time_p90_s=float(np.percentile(durations, 90)) if durations else 0.0,
        conversion_rate=_rate(converted, n), post_interaction_revenue=round(revenue, 2),
        reopen_rate=_rate(reopened, len(resolved)),
        draft_acceptance_rate=_rate(rows.drafts.get("accepted", 0), reviewed),
        by_intent_containment={k: 1.0 - v[1] / v[0] for k, v in sorted(by_intent.items())},
    )


OrderBookFn = Callable[[], OrderBook | None]
