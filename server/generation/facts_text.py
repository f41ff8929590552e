"""Sentences built from facts and passages, each tied to the sources it came from.

These are the only places the composer puts data into words. Every function here
reads values from a `Fact`'s structured fields (falling back to the fact's own one-line
`text`) or quotes a passage; nothing is inferred, promised or computed from a clock.
Each sentence also has a `public` variant without personal details (ids, dates,
amounts, names) for public channels, or None when it cannot be said publicly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from server.generation.base import Fact, FactValue, Grounding, Offer, PassageRef

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_MARKDOWN_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+)")
# "Requested: we have registered your return." A glossary entry reads as a status
# claim out of context: it is never quoted.
_LABEL_ENTRY = re.compile(r"^\s*[-*+]?\s*\**[A-Z][\w'’ ]{0,30}\**\s*:\s")
_MAX_QUOTE_CHARS = 280
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Refund states still in progress come first: "open refunds" are what customers ask about.
_REFUND_ORDER = {"requested": 0, "approved": 1, "refunded": 2, "rejected": 3}


@dataclass(frozen=True, slots=True)
class Line:
    """One sentence of an answer and where it came from."""

    text: str
    source_ids: tuple[str, ...] = ()
    source_kinds: tuple[str, ...] = ()
    role: str = "body"
    public: str | None = None  # the sentence for public channels; None = leave it out
    section: int = 0  # paragraph number in formats that have paragraphs
    key: bool = False  # the line that answers the intent, when one channel says only one


def fact_line(fact: Fact, text: str, public: str | None, *extra: Fact) -> Line:
    """A body line citing `fact` (and `extra` facts), plus a policy id named in its data."""
    facts = (fact, *extra)
    ids = [f.source_id for f in facts]
    kinds = [f.source_kind for f in facts]
    policy_id = fact.data.get("policy_id")
    if isinstance(policy_id, str) and policy_id:
        ids.append(policy_id)
        kinds.append("policy")
    return Line(text, tuple(dict.fromkeys(ids)), tuple(dict.fromkeys(kinds)), public=public)


def format_date(value: FactValue) -> str:
    """ISO date or datetime -> "May 3, 2024"; anything else is shown as given."""
    if not isinstance(value, str):
        return str(value)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return f"{_MONTHS[parsed.month - 1]} {parsed.day}, {parsed.year}"


def format_amount(amount: FactValue, currency: FactValue) -> str | None:
    """49.9, "EUR" -> "49.90 EUR"; None when there is no numeric amount."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return None
    suffix = f" {currency}" if isinstance(currency, str) and currency else ""
    return f"{amount:.2f}{suffix}"


def _text(fact: Fact, key: str) -> str:
    value = fact.data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _sort_date(fact: Fact, key: str) -> str:
    # ISO strings sort chronologically; normalize datetimes so "Z" and offsets compare.
    raw = _text(fact, key)
    try:
        return datetime.fromisoformat(raw).isoformat()
    except ValueError:
        return raw


def facts_of(g: Grounding, kind: str) -> list[Fact]:
    """Facts of one kind, in a deterministic order (by source id)."""
    return sorted((f for f in g.facts if f.kind == kind), key=lambda f: f.source_id)


def mentioned(g: Grounding, source_id: str) -> bool:
    """True when the turn is linked to this id, or the message names it as a whole word."""
    if g.linked_order_id and g.linked_order_id == source_id:
        return True
    pattern = r"(?<![A-Za-z0-9])" + re.escape(source_id) + r"(?![A-Za-z0-9])"
    return re.search(pattern, g.message, flags=re.IGNORECASE) is not None


def fact_order_id(fact: Fact) -> str:
    """The order a fact is about: its `order_id` field, or its source id for order facts."""
    order_id = _text(fact, "order_id")
    return order_id or (fact.source_id if fact.source_kind == "order" else "")


def pick_order(g: Grounding) -> Fact | None:
    """The order the customer means: one named in the message, else the latest placed."""
    orders = facts_of(g, "order")
    named = [f for f in orders if mentioned(g, f.source_id)]
    candidates = named or orders
    if not candidates:
        return None
    return max(candidates, key=lambda f: (_sort_date(f, "ordered_at"), f.source_id))


def order_line(fact: Fact) -> Line:
    """Status and the date that goes with it, e.g. "Your order A1 was delivered on ..."."""
    oid = fact.source_id
    status = _text(fact, "status").lower()
    dates = {
        k: format_date(fact.data[k])
        for k in ("ordered_at", "shipped_at", "delivered_at")
        if _text(fact, k)
    }
    if status == "delivered" and "delivered_at" in dates:
        text = f"Your order {oid} was delivered on {dates['delivered_at']}."
    elif status == "shipped" and "shipped_at" in dates:
        text = f"Your order {oid} shipped on {dates['shipped_at']}."
    elif status == "processing" and "ordered_at" in dates:
        text = f"Your order {oid}, placed on {dates['ordered_at']}, is being processed."
    elif status:
        text = f"The status of your order {oid} is {status}."
    else:
        return fact_line(fact, fact.text, None)
    public = f"Your order status is {status}." if status else None
    return fact_line(fact, text, public)


def eligibility_lines(g: Grounding, order_id: str) -> list[Line]:
    """Return eligibility for `order_id` (all of it when no order is known)."""
    facts = facts_of(g, "return_eligibility")
    if order_id:
        facts = [f for f in facts if fact_order_id(f) in (order_id, "")] or facts
    lines = []
    for fact in facts:
        eligible = fact.data.get("eligible")
        title = _text(fact, "title") or "this item"
        deadline = format_date(fact.data["deadline"]) if _text(fact, "deadline") else ""
        reason = _text(fact, "reason").rstrip(".")
        if eligible is True:
            text = f"{title[:1].upper()}{title[1:]} can be returned"
            text += f" until {deadline}." if deadline else "."
            public = "Your item can be returned."
        elif eligible is False:
            text = f"{title[:1].upper()}{title[1:]} is not eligible for return"
            if reason.startswith(("The ", "No ")):  # a sentence, not a title, follows
                reason = reason[:1].lower() + reason[1:]
            text += f": {reason}." if reason else "."
            public = "Your item is not eligible for return."
        else:
            text, public = fact.text, None
        lines.append(fact_line(fact, text, public))
    return lines


def refund_lines(g: Grounding, limit: int, max_amount: float | None = None) -> list[Line]:
    """Refunds, open ones first; each states its status and amount as recorded.

    An amount above `max_amount` (the policy's ceiling for amounts the bot may state)
    is left out of the sentence rather than having the guard block the answer.
    """
    facts = sorted(
        facts_of(g, "refund"),
        key=lambda f: (_REFUND_ORDER.get(_text(f, "refund_status").lower(), 9), f.source_id),
    )
    lines = []
    for fact in facts[:limit]:
        status = _text(fact, "refund_status").lower()
        if not status:
            lines.append(fact_line(fact, fact.text, None))
            continue
        target = fact_order_id(fact) or fact.source_id
        raw = fact.data.get("amount")
        stateable = max_amount is None or (isinstance(raw, int | float) and raw <= max_amount)
        amount = format_amount(raw, fact.data.get("currency")) if stateable else None
        of_amount = f" of {amount}" if amount else ""
        text = f"The refund{of_amount} for order {target} is {status}."
        lines.append(fact_line(fact, text, f"Your refund is {status}."))
    return lines


def warranty_lines(g: Grounding, limit: int) -> list[Line]:
    """Warranty coverage and expiry, as recorded."""
    lines = []
    for fact in facts_of(g, "warranty")[:limit]:
        title = _text(fact, "title") or "your product"
        expires = format_date(fact.data["expires_at"]) if _text(fact, "expires_at") else ""
        days_left = fact.data.get("days_left")
        active = fact.data.get("active")
        if active is None and isinstance(days_left, int) and not isinstance(days_left, bool):
            active = days_left > 0
        if active is True and expires:
            text = f"The warranty for {title} is valid until {expires}"
            # Words, not "(200 days left)": digits after a date read like a phone number.
            text += f" and has {days_left} days left." if isinstance(days_left, int) else "."
            public = "Your product is still under warranty."
        elif active is False and expires:
            text = f"The warranty for {title} ended on {expires}."
            public = "The warranty on this product has ended."
        else:
            text, public = fact.text, None
        claim = _text(fact, "claim_status")
        if claim:
            text += f" Your claim is {claim}."
        lines.append(fact_line(fact, text, public))
    return lines


def product_lines(g: Grounding, limit: int) -> list[Line]:
    """Availability of the products in the facts, when recorded."""
    lines = []
    for fact in facts_of(g, "product")[:limit]:
        title = _text(fact, "title") or fact.source_id
        in_stock = fact.data.get("in_stock")
        if in_stock is True:
            text = f"The {title} is in stock."
        elif in_stock is False:
            text = f"The {title} is currently out of stock."
        else:
            text = fact.text
        lines.append(fact_line(fact, text, text if in_stock is not None else None))
    return lines


def passage_sentences(text: str) -> list[str]:
    """Plain sentences of a passage: markdown headings and list markers dropped."""
    sentences = []
    for raw_line in text.splitlines():
        if raw_line.lstrip().startswith("#"):
            continue  # a heading repeats the title; it is not a sentence
        if _LABEL_ENTRY.match(raw_line):
            continue
        line = _MARKDOWN_PREFIX.sub("", raw_line).strip()
        if not line:
            continue
        for sentence in _SENTENCE_END.split(line):
            sentence = sentence.strip()
            if sentence and len(sentence) <= _MAX_QUOTE_CHARS:
                sentences.append(sentence if sentence[-1] in ".!?" else sentence + ".")
    return sentences


def best_passage(g: Grounding, prefer_kinds: tuple[str, ...] = ()) -> PassageRef | None:
    """Highest-scoring passage, preferring the given kinds; ties by id."""
    if not g.passages:
        return None
    return max(g.passages, key=lambda p: (p.kind in prefer_kinds, p.score, p.id))


def passage_lines(
    g: Grounding, limit: int, prefer_kinds: tuple[str, ...] = (), section: int = 1
) -> list[Line]:
    """Up to `limit` leading sentences of the best passage, quoted as is."""
    passage = best_passage(g, prefer_kinds)
    if passage is None or limit <= 0:
        return []
    return [
        Line(s, (passage.source_id,), (passage.kind,), public=s, section=section)
        for s in passage_sentences(passage.text)[:limit]
    ]


def offer_lines(offers: list[Offer], limit: int, section: int) -> list[Line]:
    """Cross-sell suggestions, best score first; each cites its product."""
    ranked = sorted(offers, key=lambda o: (-o.score, o.product_id))[:limit]
    lines = []
    for offer in ranked:
        reason = offer.reason.strip().rstrip(".")
        text = f"You might also like the {offer.title}" + (f" ({reason})." if reason else ".")
        lines.append(Line(text, (offer.product_id,), ("product",), "offer", text, section))
    return lines
