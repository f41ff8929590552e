"""Intent-specific response plans: which facts and passages answer which intent.

A plan is an opener (empathy or thanks, no sources), body lines built from facts and
passages (each with its sources), and a closing (a question or next step, no sources).
Plans never promise refunds, compensation or delivery dates; they state what the facts
record and quote the help center. Channel formatting happens in the composer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from server.generation.base import Grounding
from server.generation.facts_text import (
    Line,
    eligibility_lines,
    fact_order_id,
    facts_of,
    mentioned,
    order_line,
    passage_lines,
    pick_order,
    product_lines,
    refund_lines,
    warranty_lines,
)

INTENTS = (
    "order_status", "cancel_order", "change_order", "return_item", "refund_status",
    "damaged_item", "wrong_item", "missing_package", "warranty_claim", "change_address",
    "delivery_options", "shipping_cost", "payment_problem", "invoice_request",
    "account_access", "delete_account", "product_question", "product_availability",
    "promo_code", "complaint", "talk_to_human", "praise", "reorder", "newsletter",
    "duplicate_charge", "shipping_destinations", "price_match", "gift_card", "subscription",
)  # fmt: skip
OUT_OF_SCOPE = "out_of_scope"

_SORRY = "I'm sorry for the trouble."
_ASK_ORDER = "Could you share your order number so I can look it up?"
_ANYTHING_ELSE = "Is there anything else I can help you with?"
_NOT_RETURNABLE = (
    "If the item is faulty, it may still be covered by its warranty: reply here and "
    "we will check."
)
_CLOSINGS = {
    "order_status": _ANYTHING_ELSE,
    "cancel_order": "If you would like to go ahead with the cancellation, just reply here.",
    "change_order": "Reply with the change you need and we will check what is possible.",
    "change_address": "Reply with the new address details and we will check what is possible.",
    "return_item": "Reply here if you would like to start the return.",
    "refund_status": _ANYTHING_ELSE,
    "damaged_item": "Please reply with a photo of the damage so we can look into it.",
    "wrong_item": "Please reply with a photo of the item you received so we can look into it.",
    "missing_package": "Reply here if it still has not arrived and we will look into it.",
    "warranty_claim": "Reply here if you would like to open a warranty claim.",
    "delivery_options": _ANYTHING_ELSE,
    "shipping_cost": _ANYTHING_ELSE,
    "payment_problem": "If the problem continues, reply here and we will look into it.",
    "invoice_request": _ANYTHING_ELSE,
    "account_access": "If you still cannot sign in, reply here and we will help.",
    "delete_account": "Reply here to confirm that you want your account deleted.",
    "product_question": "Let me know if you have any other questions about it.",
    "product_availability": _ANYTHING_ELSE,
    "promo_code": _ANYTHING_ELSE,
    "complaint": "A colleague can review this with you if you reply here.",
    "talk_to_human": "A colleague can take over this conversation if you reply here.",
    "praise": "We look forward to serving you again.",
    "reorder": _ANYTHING_ELSE,
    "newsletter": _ANYTHING_ELSE,
    "duplicate_charge": "Reply with the references of both charges and we will look into it.",
    "shipping_destinations": _ANYTHING_ELSE,
    "price_match": "Reply with your order number and a link to the other offer to ask for it.",
    "gift_card": _ANYTHING_ELSE,
    "subscription": "Reply here if you would like help changing your subscription.",
    OUT_OF_SCOPE: (
        "I can help with orders, deliveries, returns, refunds, warranties, payments "
        "and your account."
    ),
}
_OPENERS = {
    "damaged_item": _SORRY,
    "wrong_item": _SORRY,
    "missing_package": _SORRY,
    "payment_problem": _SORRY,
    "duplicate_charge": _SORRY,
    "complaint": "I'm sorry to hear about your experience.",
    "praise": "Thank you so much for your kind words!",
}
_POLICY = ("policy",)


@dataclass(frozen=True, slots=True)
class Budget:
    """How much a channel may say: fact lines and quoted passage sentences."""

    facts: int
    passage_sentences: int
    max_refund_amount: float | None = None  # larger refund amounts are not stated


@dataclass(frozen=True, slots=True)
class Plan:
    """What to say for one grounding, before channel formatting."""

    intent: str
    opener: str = ""
    body: list[Line] = field(default_factory=list)
    closing: str = ""


def _order_lines(g: Grounding, only_if_named: bool = False) -> tuple[list[Line], str]:
    order = pick_order(g)
    if order is None or (only_if_named and not mentioned(g, order.source_id)):
        return [], ""
    return [order_line(order)], order.source_id


def _order_plan(g: Grounding, b: Budget) -> Plan:
    lines, _ = _order_lines(g)
    closing = _CLOSINGS[g.intent] if lines else _ASK_ORDER
    body = lines + passage_lines(g, b.passage_sentences)
    return Plan(g.intent, _OPENERS.get(g.intent, ""), body, closing)


def _return_plan(g: Grounding, b: Budget) -> Plan:
    lines, order_id = _order_lines(g)
    elig = [replace(ln, key=True) for ln in eligibility_lines(g, order_id)]
    elig = elig[: max(b.facts - len(lines), 1)]
    if g.intent == "return_item" and _nothing_returnable(g, order_id):
        # How-to steps and "start the return" would contradict the facts just stated.
        return Plan(g.intent, _OPENERS.get(g.intent, ""), lines + elig, _NOT_RETURNABLE)
    body = lines + elig + passage_lines(g, b.passage_sentences, _POLICY)
    closing = _CLOSINGS[g.intent] if lines or elig else _ASK_ORDER
    return Plan(g.intent, _OPENERS.get(g.intent, ""), body, closing)


def _nothing_returnable(g: Grounding, order_id: str) -> bool:
    """True when the order's items are all on record as not eligible for return."""
    facts = [f for f in facts_of(g, "return_eligibility") if fact_order_id(f) in (order_id, "")]
    return bool(facts) and all(f.data.get("eligible") is False for f in facts)


def _refund_plan(g: Grounding, b: Budget) -> Plan:
    refunds = refund_lines(g, b.facts, b.max_refund_amount)
    if not refunds:
        # No refund on record: say where things stand for the order instead, if any.
        orders, _ = _order_lines(g, only_if_named=True)
        body = orders + passage_lines(g, b.passage_sentences, _POLICY)
        return Plan(g.intent, body=body, closing=_ASK_ORDER if not orders else _ANYTHING_ELSE)
    body = refunds + passage_lines(g, b.passage_sentences, _POLICY)
    return Plan(g.intent, body=body, closing=_CLOSINGS[g.intent])


def _warranty_plan(g: Grounding, b: Budget) -> Plan:
    warranties = warranty_lines(g, b.facts)
    # Claim steps come from the help center; allow one more sentence for them.
    steps = passage_lines(g, b.passage_sentences + 1)
    closing = _CLOSINGS[g.intent] if warranties else _ASK_ORDER
    return Plan(g.intent, body=warranties + steps, closing=closing)


def _product_plan(g: Grounding, b: Budget) -> Plan:
    products = product_lines(g, b.facts)
    passages = passage_lines(g, b.passage_sentences)
    body = products + passages if g.intent == "product_availability" else passages + products
    return Plan(g.intent, body=body, closing=_CLOSINGS[g.intent])


def _help_center_plan(g: Grounding, b: Budget) -> Plan:
    return Plan(
        g.intent,
        _OPENERS.get(g.intent, ""),
        passage_lines(g, b.passage_sentences),
        _CLOSINGS[g.intent],
    )


def _complaint_plan(g: Grounding, b: Budget) -> Plan:
    # Only bring up an order the customer named: a complaint may be about anything.
    lines, _ = _order_lines(g, only_if_named=True)
    body = lines + passage_lines(g, b.passage_sentences)
    return Plan(g.intent, _OPENERS[g.intent], body, _CLOSINGS[g.intent])


def _reorder_plan(g: Grounding, b: Budget) -> Plan:
    lines, order_id = _order_lines(g)
    products = product_lines(g, b.facts)
    body = lines + products + passage_lines(g, b.passage_sentences)
    closing = _CLOSINGS[g.intent] if order_id or products else _ASK_ORDER
    return Plan(g.intent, body=body, closing=closing)


def _no_facts_plan(g: Grounding, b: Budget) -> Plan:
    return Plan(g.intent, _OPENERS.get(g.intent, ""), [], _CLOSINGS[g.intent])


def _scope_plan(g: Grounding, b: Budget) -> Plan:
    return Plan(OUT_OF_SCOPE, closing=_CLOSINGS[OUT_OF_SCOPE])


def _flow_plan(g: Grounding) -> Plan:
    """A guided-flow step (server/conversation/flows.py): where the linked order stands,
    then the step's own words, which ask for what the flow needs next or end it."""
    lines, _ = _order_lines(g, only_if_named=True)
    step = Line(g.flow_text, (g.flow_id,), ("flow",), public=g.flow_text, key=True)
    return Plan(g.intent, _OPENERS.get(g.intent, ""), [*lines, step],
                "" if g.flow_asks else _ANYTHING_ELSE)


PlanFn = Callable[[Grounding, Budget], Plan]
PLANS: dict[str, PlanFn] = {
    "order_status": _order_plan,
    "cancel_order": _order_plan,
    "change_order": _order_plan,
    "change_address": _order_plan,
    "missing_package": _order_plan,
    "return_item": _return_plan,
    "damaged_item": _return_plan,
    "wrong_item": _return_plan,
    "refund_status": _refund_plan,
    "warranty_claim": _warranty_plan,
    "product_question": _product_plan,
    "product_availability": _product_plan,
    "delivery_options": _help_center_plan,
    "shipping_cost": _help_center_plan,
    "payment_problem": _help_center_plan,
    "invoice_request": _help_center_plan,
    "account_access": _help_center_plan,
    "delete_account": _help_center_plan,
    "promo_code": _help_center_plan,
    "newsletter": _help_center_plan,
    "complaint": _complaint_plan,
    "reorder": _reorder_plan,
    "talk_to_human": _no_facts_plan,
    "praise": _no_facts_plan,
    "duplicate_charge": _order_plan,
    "shipping_destinations": _help_center_plan,
    "price_match": _help_center_plan,
    "gift_card": _help_center_plan,
    "subscription": _help_center_plan,
    OUT_OF_SCOPE: _scope_plan,
}


def plan_for(g: Grounding, budget: Budget) -> Plan:
    """The plan for the grounding's intent; an unknown intent is answered as out of scope.
    A clarifying question (server/conversation/clarify.py) replaces the answer."""
    if g.question and g.intent != OUT_OF_SCOPE:
        return Plan(g.intent, _OPENERS.get(g.intent, ""), [], g.question)
    if g.flow_text and g.intent != OUT_OF_SCOPE:
        return _flow_plan(g)
    fn = PLANS.get(g.intent, _scope_plan)
    return fn(g, budget)
