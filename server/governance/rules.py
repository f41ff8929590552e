"""The escalation rules, each defined once: id, priority, default action, the policy
parameters it reads, and its check.

`RULES` is the one list. The policy file's `[escalation.rule_actions]` may override
each rule's action (keys are checked against these ids); the router evaluates the rules
in this order and, when several handoff rules fire, gives the one with the lowest
`priority` as the reason (safety first). `describe()` prints the table.

Actions: "handoff" routes to a person; "flag" only records it (the refund rules also
add a pending approval, and the bot still answers); "offer" keeps the bot answering and
offers a person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from server.governance.policy import Escalation
    from server.governance.routing import RoutingInput
    from server.governance.sentiment import Sentiment

RuleAction = Literal["handoff", "flag", "offer"]


@dataclass(frozen=True, slots=True)
class Signals:
    """What the checks look at for one message."""

    inp: RoutingInput
    esc: Escalation
    sentiment: Sentiment
    asks_for_human: bool  # the routing phrases for "a real person" matched
    refund_in_policy_currency: float | None  # None: no refund amount, or no rate for it


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    priority: int  # lower wins as the handoff reason
    action: RuleAction  # the default; the policy may override it
    params: tuple[str, ...]  # escalation parameters the check reads
    fires_when: str
    check: Callable[[Signals], bool]


def _refund_unconvertible(s: Signals) -> bool:
    return s.inp.requested_refund_amount is not None and s.refund_in_policy_currency is None


def _refund_above(s: Signals) -> bool:
    amount = s.refund_in_policy_currency
    return amount is not None and amount > s.esc.refund_auto_limit


RULES: tuple[Rule, ...] = (
    Rule("out_of_scope", 6, "handoff", (), "the classifier flags the message out of scope",
         lambda s: s.inp.out_of_scope),
    Rule("low_confidence", 7, "handoff", ("min_confidence",),
         "intent confidence < min_confidence",
         lambda s: s.inp.confidence < s.esc.min_confidence),
    Rule("asked_for_human", 3, "handoff", (), 'intent talk_to_human, or "speak to a human"',
         lambda s: s.inp.intent == "talk_to_human" or s.asks_for_human),
    Rule("negative_sentiment", 5, "handoff", ("negative_sentiment_threshold",),
         "sentiment score <= negative_sentiment_threshold",
         lambda s: s.sentiment.score <= s.esc.negative_sentiment_threshold),
    Rule("legal_threat", 2, "handoff", (), "lawyer / sue / chargeback / consumer body",
         lambda s: bool(s.sentiment.legal_threat)),
    Rule("safety_issue", 1, "handoff", (), "fire / smoke / burn / electric shock / injury",
         lambda s: bool(s.sentiment.safety_issue)),
    Rule("refund_above_limit", 8, "flag", ("refund_auto_limit", "refund_currency",
                                           "currency_rates"),
         "requested refund, in the policy currency, > refund_auto_limit", _refund_above),
    Rule("refund_currency_unknown", 9, "flag", ("refund_currency", "currency_rates"),
         "a refund amount in a currency the policy has no rate for", _refund_unconvertible),
    Rule("repeat_contact", 4, "handoff", ("repeat_contact_limit", "repeat_contact_window_days"),
         "earlier conversations on the same issue >= repeat_contact_limit",
         lambda s: s.inp.repeat_contacts >= s.esc.repeat_contact_limit),
    Rule("flow_handoff", 11, "handoff", (), "a guided flow ends with its handoff step",
         lambda s: s.inp.flow_action == "handoff"),
    Rule("vip_rule", 10, "offer", ("vip_segments", "vip_offer_human_intents"),
         "VIP segment and intent in vip_offer_human_intents",
         lambda s: s.inp.segment in s.esc.vip_segments
         and s.inp.intent in s.esc.vip_offer_human_intents),
)
RULE_IDS = tuple(r.id for r in RULES)
BY_ID = {r.id: r for r in RULES}
# Rules that add a pending "refund" approval when they fire.
REFUND_APPROVAL = frozenset({"refund_above_limit", "refund_currency_unknown"})


def describe() -> str:
    """The rule table as markdown (id, fires when, default action, priority)."""
    rows = ["| rule id | fires when | default | priority |", "|---|---|---|---|"]
    rows += [f"| {r.id} | {r.fires_when} | {r.action} | {r.priority} |" for r in RULES]
    return "\n".join(rows)
