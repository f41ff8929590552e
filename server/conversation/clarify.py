"""Clarifying questions: one short question instead of a guess.

- Several orders fit (or none was named and the customer has several): list up to three
  candidates by order id, date and item title, and ask which one.
- The customer is unknown (or named an order number that is not theirs) and the intent
  needs an order: ask for the order number.
- Never ask for what the facts already answer: an intent that needs no order gets no
  question, nor does a general question ("how do returns work?", nothing of the
  customer's own in it: the help center answers it), and one candidate is a link, not
  a question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from server.conversation.linker import Candidate, Link
from server.generation.facts_text import format_date

MAX_CANDIDATES = 3
# Intents whose answer is about one order (or an item of it).
ORDER_INTENTS = frozenset({
    "order_status", "cancel_order", "change_order", "change_address", "missing_package",
    "return_item", "damaged_item", "wrong_item", "invoice_request", "reorder",
    "warranty_claim", "refund_status",
})
_PERSONAL = re.compile(
    r"\b(?:my|mine|i|i'm|i've|i'd|i'll|we|our|us|it|this|that|them|they|one)\b|#\d|"
    r"(?<![\w-])[A-Za-z]\d{3,8}(?![\w-])|\border\s*(?:no\.?|number|#)?\s*\d", re.IGNORECASE)
ASK_ORDER_ID = "Could you share your order number so I can look it up?"
NOT_YOURS = "I could not find that order number among your orders."


def needs_order(intent: str) -> bool:
    return intent in ORDER_INTENTS


def personal(text: str) -> bool:
    """True when the message speaks of something of the customer's own ("my shoes", "it",
    "order 854"), not of the shop's rules in general ("how do returns work?")."""
    return _PERSONAL.search(text) is not None


def describe(c: Candidate) -> str:
    """"O0000855 of March 26, 2026 (Dark Chocolate 85% 100 g x5)"."""
    title = f" ({c.title})" if c.title else ""
    return f"{c.order_id} of {format_date(c.ordered_at)}{title}"


def which_order(candidates: Sequence[Candidate], unknown: bool = False) -> str:
    """The question listing up to three candidates, best first."""
    shown = list(candidates)[:MAX_CANDIDATES]
    listed = [describe(c) for c in shown]
    body = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
    lead = NOT_YOURS + " " if unknown else ""
    if len(listed) == 1:
        return f"{lead}Do you mean order {body}?"
    return f"{lead}Which order do you mean: {body}?"


def question_for(intent: str, link: Link, known_customer: bool, has_orders: bool,
                 text: str) -> str:
    """The question to ask for this turn, or "" when the link (or the intent) needs none."""
    if not needs_order(intent) or (link.order_id and not link.ambiguous):
        return ""
    if not link.ambiguous and not link.unknown_ids and not personal(text):
        return ""
    if not known_customer or not has_orders:
        return ASK_ORDER_ID
    if link.candidates and (link.ambiguous or link.unknown_ids or not link.order_id):
        return which_order(link.candidates, unknown=bool(link.unknown_ids))
    return ASK_ORDER_ID
