"""Turn the knowledge layer's answers into what governance and generation consume.

For one customer and intent: the graph facts (orders, return eligibility, warranties,
refunds, products), the order-facts view the stream guard checks claims against, and
the ids that belong to the customer (not PII in their own message). Pure functions
over a `ShopKnowledge`; the pipeline calls them in an executor.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from server.errors import NotFound
from server.generation.base import Fact
from server.governance.guard import OrderFact
from server.knowledge.graph.facts import Eligibility, OrderFacts, RefundFacts, WarrantyFacts
from server.knowledge.service import ShopKnowledge

# Which fact families each intent needs beyond the customer's recent orders.
RETURN_INTENTS = {"return_item", "damaged_item", "wrong_item", "refund_status", "complaint",
                  "cancel_order", "change_order"}
WARRANTY_INTENTS = {"warranty_claim", "damaged_item", "product_question"}
REFUND_INTENTS = {"refund_status", "return_item", "complaint", "damaged_item", "cancel_order",
                  "payment_problem"}
PRODUCT_INTENTS = {"product_question", "product_availability", "reorder"}
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{2,}")


class CustomerView(msgspec.Struct, frozen=True):
    """What the pipeline knows about the customer before classification."""

    customer_id: str
    name: str
    segment: str
    own_ids: frozenset[str]  # their order ids and product ids: not PII in their text
    order_view: dict[str, OrderFact]  # every order of theirs, for the stream guard
    refund_in_progress: bool


class Grounded(msgspec.Struct, frozen=True):
    facts: list[Fact]
    order_refs: list[str]  # orders this contact is about (mentioned, else the latest)
    order_totals: dict[str, float]


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


def customer_view(shop: ShopKnowledge, customer_id: str) -> CustomerView | None:
    """None for an anonymous visitor; NotFound for an id the shop does not know."""
    if not customer_id:
        return None
    facts = shop.facts
    customer = facts.customer(customer_id)
    orders = facts.customer_orders(customer_id, limit=10_000)
    own = {o.order_id for o in orders} | {i.product_id for o in orders for i in o.items}
    view = {
        o.order_id: OrderFact(o.status, o.delivered_at.date() if o.delivered_at else None)
        for o in orders
    }
    refunds = facts.open_refunds(customer_id)
    return CustomerView(customer_id, customer.name, customer.segment, frozenset(own), view,
                        bool(refunds))


def mentioned_ids(text: str, candidates: frozenset[str]) -> list[str]:
    """Ids from `candidates` that appear as whole tokens in text, in order of appearance."""
    seen: dict[str, None] = {}
    for m in _TOKEN.finditer(text):
        tok = m.group(0).upper()
        if tok in candidates:
            seen[tok] = None
    return list(seen)


def order_fact(o: OrderFacts) -> Fact:
    return Fact(
        kind="order", source_id=o.order_id, source_kind="order",
        text=f"Order {o.order_id} is {o.status}.",
        data={"status": o.status, "ordered_at": _iso(o.ordered_at),
              "shipped_at": _iso(o.shipped_at), "delivered_at": _iso(o.delivered_at),
              "total": o.total, "currency": o.currency, "items": len(o.items)},
    )


def eligibility_fact(e: Eligibility, title: str) -> Fact:
    return Fact(
        kind="return_eligibility", source_id=e.order_id, source_kind="order",
        text=f"{title}: {'eligible' if e.eligible else 'not eligible'} for return. {e.reason}",
        data={"order_id": e.order_id, "product_id": e.product_id, "title": title,
              "eligible": e.eligible, "code": e.code, "reason": e.reason,
              "deadline": _iso(e.deadline), "policy_id": e.policy_id,
              "policy_version": e.policy_version},
    )


def warranty_fact(w: WarrantyFacts) -> Fact:
    return Fact(
        kind="warranty", source_id=w.warranty_id, source_kind="warranty",
        text=f"Warranty for {w.product_title} {'active' if w.active else 'expired'}.",
        data={"order_id": w.order_id, "product_id": w.product_id, "title": w.product_title,
              "expires_at": _iso(w.expires_at), "days_left": w.days_left, "active": w.active,
              "claim_status": w.claim_status or None, "kind": w.kind},
    )


def refund_fact(r: RefundFacts, currency: str) -> Fact:
    return Fact(
        kind="refund", source_id=r.order_id, source_kind="return",
        text=f"Refund for {r.product_title} is {r.refund_status}.",
        data={"order_id": r.order_id, "product_id": r.product_id, "title": r.product_title,
              "refund_status": r.refund_status, "amount": r.refund_amount,
              "currency": currency},
    )


def ground(shop: ShopKnowledge, view: CustomerView | None, intent: str, text: str,
           max_orders: int = 3) -> Grounded:
    """Facts for this customer and intent; without a customer, only product facts."""
    facts = shop.facts
    out: list[Fact] = []
    refs: list[str] = []
    totals: dict[str, float] = {}
    products = {p.product_id for p in shop.snapshot.products}
    for pid in mentioned_ids(text, frozenset(products))[:3]:
        if intent in PRODUCT_INTENTS or view is None or pid not in view.own_ids:
            p = facts.product(pid)
            out.append(Fact(kind="product", source_id=pid, source_kind="product",
                            text=f"{p.title} costs {p.price:.2f} {p.currency}.",
                            data={"title": p.title, "in_stock": p.in_stock, "price": p.price,
                                  "currency": p.currency}))
    if view is None:
        return Grounded(out, refs, totals)
    orders = facts.customer_orders(view.customer_id, limit=10_000)
    by_id = {o.order_id: o for o in orders}
    named = [by_id[i] for i in mentioned_ids(text, frozenset(by_id))]
    chosen = named or orders[:max_orders]
    refs = [o.order_id for o in (named or orders[:1])]
    for o in chosen:
        out.append(order_fact(o))
        totals[o.order_id] = o.total
    if intent in RETURN_INTENTS:
        for o in (named or orders[:1]):
            for item in o.items:
                try:
                    e = facts.return_eligibility(o.order_id, item.product_id)
                except NotFound:
                    continue
                out.append(eligibility_fact(e, item.title))
    if intent in WARRANTY_INTENTS:
        out.extend(warranty_fact(w) for w in facts.warranties(view.customer_id)[:3])
    if intent in REFUND_INTENTS:
        currency = orders[0].currency if orders else "EUR"
        out.extend(refund_fact(r, currency) for r in facts.open_refunds(view.customer_id)[:3])
    return Grounded(out, refs, totals)
