"""Turn the knowledge layer's answers into what governance and generation consume.

For one customer and intent: the graph facts (orders, return eligibility, warranties,
refunds, products), the order-facts view the stream guard checks claims against, and
the ids that belong to the customer (not PII in their own message). Pure functions
over a `ShopKnowledge`; the pipeline calls them in an executor.

When the turn is linked to an order (and item), the facts are that order's and that
item's only, and `passage_fits` keeps out help-center passages written for other
products or categories: no phone-return article for a chair.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from server.conversation.flow_facts import order_flow_facts
from server.conversation.flows import FlowEngine
from server.conversation.guide import FlowTurn, flow_turn
from server.conversation.linker import Link, ProductInfo, mask_order_refs, mask_titles
from server.conversation.state import ConversationState
from server.conversation.turns import TurnPlan, plan_turn
from server.errors import NotFound
from server.generation.base import Fact
from server.generation.plans import PLANS
from server.governance.guard import OrderFact
from server.knowledge.graph.facts import (
    Eligibility,
    OrderFacts,
    ProductFacts,
    RefundFacts,
    WarrantyFacts,
)
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
    order_refs: list[str]  # orders this contact is about (the linked one)
    order_totals: dict[str, float]
    order_currency: dict[str, str] = {}
    scope: tuple[str, ...] = ()  # categories of the linked item(s): passages must fit


class CatalogView(msgspec.Struct, frozen=True):
    """Per snapshot: what the linker knows of products, and which products or categories
    each help-center source was written for (empty = for all)."""

    products: dict[str, ProductInfo]
    source_scope: dict[str, tuple[str, ...]]  # source id -> product ids and categories


def catalog_view(shop: ShopKnowledge) -> CatalogView:
    snap = shop.snapshot
    products = {p.product_id: ProductInfo(p.title, p.brand, p.category) for p in snap.products}
    scope: dict[str, tuple[str, ...]] = {}
    for a in snap.articles:
        if a.product_ids or a.categories:
            scope[a.article_id] = (*a.product_ids, *a.categories)
    for pol in snap.policies:
        if pol.applies_to and pol.applies_to != "*":
            scope[pol.policy_id] = (pol.applies_to,)
    return CatalogView(products, scope)


def classifier_text(text: str, view: CustomerView | None, catalog: CatalogView) -> str:
    """The message with the full titles of the customer's items masked: "I want to return
    the Argan Shampoo 400 ml" reads to the intent classifier as a return, not a reorder."""
    if view is None:
        return mask_order_refs(text) or text
    titles = [catalog.products[p].title for p in view.own_ids if p in catalog.products]
    return mask_order_refs(mask_titles(text, titles)) or text


def passage_fits(catalog: CatalogView, source_id: str, scope: tuple[str, ...]) -> bool:
    """True when the source is for everything, or for one of the linked products or a
    category containing one of them ("Electronics" fits "Electronics/Phones")."""
    written_for = catalog.source_scope.get(source_id)
    if not written_for or not scope:
        return True
    for s in scope:
        for w in written_for:
            if s == w or s.startswith(w.rstrip("/") + "/"):
                return True
    return False


class TurnContext(msgspec.Struct, frozen=True):
    plan: TurnPlan
    grounded: Grounded
    flow: FlowTurn | None = None
    drop_flow: bool = False


def flow_facts(shop: ShopKnowledge, view: CustomerView | None, order_id: str,
               product_id: str) -> dict[str, Any]:
    """The facts guided flows branch on, for the linked order (none without one)."""
    if not order_id:
        return {}
    facts = shop.facts
    try:
        order = facts.order(order_id)
    except NotFound:
        return {}
    elig = []
    for item in order.items:
        try:
            elig.append(facts.return_eligibility(order_id, item.product_id))
        except NotFound:
            continue
    warranties = facts.warranties(view.customer_id) if view is not None else []
    return order_flow_facts(order, facts.now, eligibility=elig, warranties=warranties,
                            product_id=product_id)


def plan_and_ground(shop: ShopKnowledge, catalog: CatalogView, view: CustomerView | None,
                    state: ConversationState, intent: str, text: str,
                    similarity: Mapping[str, float] | None = None,
                    flows: FlowEngine | None = None, confidence: float = 1.0,
                    ) -> TurnContext:
    """Link the turn (server/conversation/turns.py), walk its guided flow if one runs
    (server/conversation/guide.py), then ground it on what it links."""
    facts = shop.facts
    orders = facts.customer_orders(view.customer_id, limit=10_000) if view else []

    def lookup(word: str) -> OrderFacts | None:
        try:
            return facts.order(word.strip(".,!?;:()").upper())
        except NotFound:
            return None

    plan = plan_turn(state, text, intent, orders, catalog.products, facts.now,
                     known_customer=view is not None,
                     facts_answer=intent == "refund_status" and bool(
                         view and view.refund_in_progress),
                     similarity=similarity, lookup_order=lookup)
    if plan.question:
        return TurnContext(plan, Grounded([], [], {}))
    turn, drop = flow_turn(flows, state, plan, intent, confidence, text,
                           lambda o, p: flow_facts(shop, view, o, p),
                           own_answers=frozenset(PLANS))
    if turn is not None and turn.resumed and flows is not None:
        # A reply to the flow continues the flow's intent, whatever the classifier reads.
        intents = flows.flow(turn.step.flow_id).intents
        if intents and plan.intent not in intents:
            plan = msgspec.structs.replace(plan, intent=intents[0], resumed=True)
    if turn is not None and turn.slots.get("order_id") and not plan.link.order_id:
        # A resumed flow keeps the order it runs on.
        plan = msgspec.structs.replace(plan, link=Link(
            turn.slots["order_id"], turn.slots.get("product_id", ""), 0.85, "flow"))
    return TurnContext(plan, ground(shop, view, plan.intent, text, plan.link, catalog), turn,
                       drop)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat().replace("+00:00", "Z")


def customer_view(shop: ShopKnowledge, customer_id: str) -> CustomerView | None:
    """None for an anonymous visitor; NotFound for an id the shop does not know."""
    if not customer_id:
        return None
    facts = shop.facts
    customer_id = facts.canonical_customer(customer_id)  # a merged id names the kept one
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


def _product_fact(p: ProductFacts) -> Fact:
    return Fact(kind="product", source_id=p.product_id, source_kind="product",
                text=f"{p.title} costs {p.price:.2f} {p.currency}.",
                data={"title": p.title, "in_stock": p.in_stock, "price": p.price,
                      "currency": p.currency})


def ground(shop: ShopKnowledge, view: CustomerView | None, intent: str, text: str,
           link: Link | None = None, catalog: CatalogView | None = None) -> Grounded:
    """Facts for this customer, intent and linked order/item. Without a link, no order
    facts (the plan asks, or the intent needs none); without a customer, product facts
    and the facts of an order the visitor named by its full number."""
    facts = shop.facts
    link = link or Link()
    out: list[Fact] = []
    totals: dict[str, float] = {}
    currency: dict[str, str] = {}
    products = {p.product_id for p in shop.snapshot.products}
    for pid in mentioned_ids(text, frozenset(products))[:3]:
        if intent in PRODUCT_INTENTS or view is None or pid not in view.own_ids:
            out.append(_product_fact(facts.product(pid)))
    if (link.product_id and intent in PRODUCT_INTENTS
            and link.product_id not in {f.source_id for f in out}):
        out.append(_product_fact(facts.product(link.product_id)))
    if not link.order_id or link.ambiguous:
        if view is not None and intent in REFUND_INTENTS:
            latest = facts.customer_orders(view.customer_id, limit=1)
            cur = latest[0].currency if latest else "EUR"
            out.extend(refund_fact(r, cur) for r in facts.open_refunds(view.customer_id)[:3])
        return Grounded(out, [], totals)
    o = facts.order(link.order_id)
    out.append(order_fact(o))
    items = [i for i in o.items if not link.product_id or i.product_id == link.product_id]
    items = items or o.items
    # What a refund for this contact could be: the linked item's lines, else the order.
    totals[o.order_id] = (round(sum(i.unit_price * i.quantity for i in items), 2)
                          if link.product_id else o.total)
    currency[o.order_id] = o.currency
    if intent in RETURN_INTENTS:
        for item in items:
            try:
                e = facts.return_eligibility(o.order_id, item.product_id)
            except NotFound:
                continue
            out.append(eligibility_fact(e, item.title))
    if view is not None and intent in WARRANTY_INTENTS:
        wanted = {i.product_id for i in items}
        out.extend(warranty_fact(w) for w in facts.warranties(view.customer_id)
                   if w.order_id == o.order_id and w.product_id in wanted)
    if view is not None and intent in REFUND_INTENTS:
        out.extend(refund_fact(r, o.currency) for r in facts.open_refunds(view.customer_id)
                   if r.order_id == o.order_id)
    scope = tuple(c for i in items for c in (
        i.product_id, catalog.products[i.product_id].category if catalog
        and i.product_id in catalog.products else ""))
    return Grounded(out, [o.order_id], totals, currency, tuple(c for c in scope if c))
