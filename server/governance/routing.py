"""Escalation rules: decide whether the bot answers or a person takes over.

Each rule has a stable id (policy.RULE_IDS) that is recorded when it fires. What a
fired rule does comes from the policy (`escalation.rule_actions`); the shipped
defaults are:

| rule id            | fires when                                              | default |
|--------------------|---------------------------------------------------------|---------|
| out_of_scope       | the classifier flags the message out of scope           | handoff |
| low_confidence     | intent confidence < escalation.min_confidence           | handoff |
| asked_for_human    | intent talk_to_human, or "speak to a human/manager..."  | handoff |
| negative_sentiment | sentiment score <= negative_sentiment_threshold         | handoff |
| legal_threat       | lawyer / sue / chargeback / small claims / consumer body | handoff |
| safety_issue       | fire / smoke / burn / electric shock / injury / choking | handoff |
| refund_above_limit | requested refund > refund_auto_limit (EUR)              | flag    |
| repeat_contact     | repeat_contacts >= repeat_contact_limit                 | handoff |
| vip_rule           | VIP segment and intent in vip_offer_human_intents       | offer   |

handoff: route to a person with the policy's message for the reason and channel.
flag: record only; refund_above_limit also adds a pending "refund" approval and the
bot still answers. offer: the bot answers and offers a person (`offer_human`).

The decision's `reason` is the highest-priority handoff rule (safety first).
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from server.governance.policy import Policy
from server.governance.sentiment import SentimentScorer

Route = Literal["automated", "human"]
# Priority for choosing the reason when several handoff rules fire.
_PRIORITY = (
    "safety_issue",
    "legal_threat",
    "asked_for_human",
    "repeat_contact",
    "negative_sentiment",
    "out_of_scope",
    "low_confidence",
    "refund_above_limit",
    "vip_rule",
)
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
    repeat_contacts: int = 0  # earlier contacts about the same order in the policy window
    requested_refund_amount: float | None = (
        None  # EUR, from the caller (extract_amounts/order total)
    )
    channel: str = "default"
    refund_in_progress: bool = False


class PendingAction(msgspec.Struct, frozen=True):
    action: str  # e.g. "refund"
    reason: str  # the rule id that requires approval
    amount: float | None = None
    limit: float | None = None


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
        fired: list[str] = []
        pending: list[PendingAction] = []
        if inp.out_of_scope:
            fired.append("out_of_scope")
        if inp.confidence < esc.min_confidence:
            fired.append("low_confidence")
        if inp.intent == "talk_to_human" or self._human.search(inp.text):
            fired.append("asked_for_human")
        if senti.score <= esc.negative_sentiment_threshold:
            fired.append("negative_sentiment")
        if senti.legal_threat:
            fired.append("legal_threat")
        if senti.safety_issue:
            fired.append("safety_issue")
        amount = inp.requested_refund_amount
        if amount is not None and amount > esc.refund_auto_limit:
            fired.append("refund_above_limit")
            pending.append(
                PendingAction("refund", "refund_above_limit", amount, esc.refund_auto_limit)
            )
        if inp.repeat_contacts >= esc.repeat_contact_limit:
            fired.append("repeat_contact")
        if inp.segment in esc.vip_segments and inp.intent in esc.vip_offer_human_intents:
            fired.append("vip_rule")

        actions = esc.rule_actions
        handoffs = [r for r in fired if actions.action(r) == "handoff"]
        human = bool(handoffs)
        reason = min(handoffs, key=_PRIORITY.index) if handoffs else ""
        offer = not human and any(actions.action(r) == "offer" for r in fired)
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
