"""Escalation routing: decide whether the bot answers or a person takes over.

The rules themselves (id, priority, default action, parameters, check) are defined
once, in server/governance/rules.py; `Router.route` evaluates them under one policy,
applies each fired rule's action (`Escalation.action`), and gives the decision's
`reason`: the highest-priority handoff rule. The refund rules compare amounts in the
policy's `refund_currency`: another currency is converted only by the policy's
`currency_rates`, else it fires `refund_currency_unknown` (flag + pending approval).
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from server.governance.policy import Policy
from server.governance.rules import BY_ID, REFUND_APPROVAL, RULES, Signals
from server.governance.sentiment import SentimentScorer

Route = Literal["automated", "human"]
_HUMAN_PHRASES = (
    r"\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|your\s+)?"
    r"(?:real\s+|actual\s+|live\s+)?(?:human|person|agent|someone|somebody|manager|"
    r"supervisor|representative|rep|operator|employee|staff)"
    r"|\b(?:real|actual|live)\s+(?:human|person|agent)\b"
    r"|\bhuman\s+(?:please|agent|being)\b|\bnot\s+(?:a|this)\s+(?:bot|robot|chatbot)\b"
    r"|\bescalate\s+(?:this|my)\b"
)
_CURRENCY = {"€": "EUR", "$": "USD", "£": "GBP", "eur": "EUR", "euro": "EUR", "euros": "EUR",
             "usd": "USD", "dollar": "USD", "dollars": "USD", "gbp": "GBP", "pound": "GBP",
             "pounds": "GBP", "chf": "CHF"}  # fmt: skip
_NUM = r"\d{1,3}(?:[.,\s]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT = re.compile(
    rf"(?P<pre>[€$£]|\b(?:EUR|USD|GBP|CHF)\b)\s?(?P<a>{_NUM})(?!\d)"
    rf"|(?<![\w.,])(?P<b>{_NUM})\s?(?P<post>[€$£]|\b(?:EUR|USD|GBP|CHF|euros?|dollars?|pounds?)\b)",
    re.IGNORECASE,
)


class Money(msgspec.Struct, frozen=True):
    amount: float
    currency: str  # ISO 4217
    start: int
    end: int


class RoutingInput(msgspec.Struct, frozen=True):
    intent: str
    confidence: float
    out_of_scope: bool
    text: str  # redacted customer message
    segment: str = "standard"
    repeat_contacts: int = 0  # earlier conversations on the same issue in the window
    # From the caller (extract_amounts / the linked order's total), in its own currency.
    requested_refund_amount: float | None = None
    requested_refund_currency: str = ""  # ISO 4217; "" = the policy's refund_currency
    channel: str = "default"
    refund_in_progress: bool = False
    flow_action: str = ""  # the action of the guided-flow step this turn ended on


class PendingAction(msgspec.Struct, frozen=True):
    action: str  # e.g. "refund"
    reason: str  # the rule id that requires approval
    amount: float | None = None
    limit: float | None = None
    currency: str = ""  # of amount
    limit_currency: str = ""  # of limit: the policy's refund_currency


class RouteDecision(msgspec.Struct, frozen=True):
    route: Route
    rules_fired: list[str]
    sentiment: float
    reason: str  # highest-priority handoff rule, or "" when automated
    handoff_message: str  # "" when automated
    pending_approval: list[PendingAction] = []
    offer_human: bool = False
    cross_sell_allowed: bool = False
    sentiment_flags: list[str] = []
    policy_version: str = ""


def parse_amount(raw: str) -> float:
    """'1,299.00' -> 1299.0, '1.299,00' -> 1299.0, '24,95' -> 24.95, '1 050' -> 1050.0."""
    s = raw.replace(" ", "")
    last_dot, last_comma = s.rfind("."), s.rfind(",")
    dec = max(last_dot, last_comma)
    # A final separator followed by 1-2 digits is the decimal point; others group thousands.
    if dec >= 0 and len(s) - dec - 1 in (1, 2):
        whole = s[:dec].replace(".", "").replace(",", "")
        return float(f"{whole}.{s[dec + 1 :]}")
    return float(s.replace(".", "").replace(",", ""))


def extract_amounts(text: str) -> list[Money]:
    """Money mentions with a currency sign or code, in order of appearance."""
    out = []
    for m in _AMOUNT.finditer(text):
        num = m.group("a") or m.group("b")
        cur = (m.group("pre") or m.group("post")).lower()
        out.append(Money(parse_amount(num), _CURRENCY[cur], m.start(), m.end()))
    return out


class Router:
    """Applies the escalation rules of one policy; build once, call `route` per message."""

    def __init__(self, policy: Policy, scorer: SentimentScorer | None = None) -> None:
        self.policy = policy
        self._scorer = scorer or SentimentScorer()
        self._human = re.compile(_HUMAN_PHRASES, re.IGNORECASE)

    def route(self, inp: RoutingInput) -> RouteDecision:
        esc = self.policy.escalation
        senti = self._scorer.score(inp.text)
        amount = inp.requested_refund_amount
        currency = inp.requested_refund_currency or esc.refund_currency
        converted = None if amount is None else esc.in_refund_currency(amount, currency)
        signals = Signals(inp, esc, senti, self._human.search(inp.text) is not None, converted)
        fired = [r.id for r in RULES if r.check(signals)]
        pending = [PendingAction("refund", r, amount, esc.refund_auto_limit, currency,
                                 esc.refund_currency)
                   for r in fired if r in REFUND_APPROVAL]
        handoffs = [r for r in fired if esc.action(r) == "handoff"]
        human = bool(handoffs)
        reason = min(handoffs, key=lambda r: BY_ID[r].priority) if handoffs else ""
        offer = not human and any(esc.action(r) == "offer" for r in fired)
        return RouteDecision(
            route="human" if human else "automated",
            rules_fired=fired,
            sentiment=senti.score,
            reason=reason,
            handoff_message=self.policy.handoff_message(reason, inp.channel) if human else "",
            pending_approval=pending,
            offer_human=offer,
            cross_sell_allowed=self.policy.cross_sell_allowed(
                inp.intent,
                refund_in_progress=inp.refund_in_progress or bool(pending),
                handoff=human or senti.score <= esc.negative_sentiment_threshold,
            ),
            sentiment_flags=senti.flags,
            policy_version=self.policy.version,
        )


def route(inp: RoutingInput, policy: Policy) -> RouteDecision:
    """One-off form of Router(policy).route(inp); hot paths keep a Router."""
    return Router(policy).route(inp)
