"""The versioned governance policy: typed Structs, loading, validation and content hash.

A policy is a TOML file (the default ships as `data/policy.toml`). It holds every
number and phrase that routing and the stream guard act on, so changing behaviour
is a reviewed file change with a new `version`, never a code change. Each decision
record stores `Policy.version` and `Policy.content_hash`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path
from typing import Literal, cast, get_args

import msgspec

from server.errors import DataError
from server.governance.rules import BY_ID, RULE_IDS, RuleAction

__all__ = ["RULE_IDS", "Policy", "RuleAction", "load_policy", "parse_policy"]
OutputAction = Literal["redact", "block"]
_ACTIONS = frozenset(get_args(RuleAction))
_VERSION_RE = re.compile(r"^\d{4}\.\d{1,2}\.\d+$")


class Escalation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    min_confidence: float
    negative_sentiment_threshold: float
    repeat_contact_limit: int
    refund_auto_limit: float  # in refund_currency
    repeat_contact_window_days: int = 14
    vip_segments: list[str] = []
    vip_offer_human_intents: list[str] = []
    # Overrides of the rules' default actions (server/governance/rules.py), by rule id.
    rule_actions: dict[str, str] = {}  # values checked: handoff | flag | offer
    refund_currency: str = "EUR"  # the currency of refund_auto_limit
    # Units of refund_currency per unit of another currency. An amount in a currency
    # without a rate is never converted: it fires refund_currency_unknown instead.
    currency_rates: dict[str, float] = {}

    def action(self, rule_id: str) -> RuleAction:
        """What the rule does when it fires: the policy's choice, else its default."""
        action = self.rule_actions.get(rule_id)
        return cast(RuleAction, action) if action in _ACTIONS else BY_ID[rule_id].action

    def in_refund_currency(self, amount: float, currency: str) -> float | None:
        """The amount in refund_currency; None when the policy has no rate for it."""
        if not currency or currency == self.refund_currency:
            return amount
        rate = self.currency_rates.get(currency)
        return None if rate is None else amount * rate


class Promises(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """What the bot may promise in its output (checked by the stream guard)."""

    max_refund_statement: float  # EUR
    forbid_compensation_offers: bool = True
    forbid_delivery_guarantees: bool = True
    compensation_patterns: list[str] = []
    delivery_guarantee_patterns: list[str] = []


class OutputRules(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    fallback_message: str
    banned_phrases: list[str] = []
    banned_phrase_action: OutputAction = "redact"
    banned_phrase_placeholder: str = "[REMOVED]"
    competitors: list[str] = []
    competitor_action: OutputAction = "block"
    competitor_placeholder: str = "[REMOVED]"
    order_id_pattern: str = r"(?<![\w-])[A-Z]\d{4,8}(?![\w-])"
    holdback_chars: int = 64


class CrossSell(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    allowed_intents: list[str] = []
    never_when_refund_in_progress: bool = True
    never_when_handoff: bool = True


RETENTION_KINDS = ("follow_up", "replenish", "warranty_expiry", "win_back", "cross_sell")


class RetentionPolicy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """When proactive retention nudges fall due, through which channel, and when not."""

    follow_up_days: int = 3  # after delivery
    cross_sell_days: int = 10  # after delivery
    warranty_lead_days: int = 30  # before the warranty ends
    win_back_factor: float = 3.0  # silent for this x the customer's usual gap between orders
    win_back_min_days: int = 60  # ... and at least this long
    win_back_single_order_days: int = 120  # one order only: silent this long
    stale_days: int = 21  # a due action not taken this long after its due date lapses
    win_back_stale_days: int = 180  # silent this long after win-back fell due: lost
    replenish_shrink: float = 1.0  # weight of the product's cadence against the customer's
    lookahead_days: int = 7  # NextBestActions also lists actions due this soon
    frequency_cap: int = 2  # issued actions per customer and channel ...
    frequency_cap_days: int = 7  # ... within this many days
    complaint_intents: list[str] = msgspec.field(default_factory=lambda: [
        "complaint", "damaged_item", "wrong_item", "missing_package"])
    complaint_days: int = 30  # a complaint counts as open this long (unless handed off)
    marketing_kinds: list[str] = msgspec.field(default_factory=lambda: [
        "replenish", "warranty_expiry", "win_back", "cross_sell"])
    channels: dict[str, str] = msgspec.field(default_factory=lambda: {
        "follow_up": "email", "replenish": "push", "warranty_expiry": "email",
        "win_back": "email", "cross_sell": "push"})
    weights: dict[str, float] = msgspec.field(default_factory=lambda: {
        "follow_up": 0.6, "replenish": 1.0, "warranty_expiry": 0.8, "win_back": 0.7,
        "cross_sell": 0.5})
    # Templates: {title} (product), {order}, {date} (the fact's date, YYYY-MM-DD), {days}.
    messages: dict[str, str] = msgspec.field(default_factory=lambda: {
        "follow_up": "How is everything with order {order}, delivered on {date}? Tell us "
                     "if anything is amiss.",
        "replenish": "Running low on {title}? You usually re-order about every {days} days.",
        "warranty_expiry": "The warranty on your {title} ends on {date}.",
        "win_back": "It has been {days} days since your last order: here is what is new.",
        "cross_sell": "Goes well with what you bought: {title}."})


class Policy(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    version: str
    escalation: Escalation
    promises: Promises
    output: OutputRules
    handoff: dict[str, dict[str, str]]
    name: str = ""
    cross_sell: CrossSell = CrossSell()
    retention: RetentionPolicy = RetentionPolicy()
    # Set by load_policy from the file bytes; a file that sets it is rejected.
    content_hash: str = ""

    def handoff_message(self, reason: str, channel: str = "default") -> str:
        """The handoff text for a reason and channel, falling back to the defaults."""
        for r in (reason, "default"):
            by_channel = self.handoff.get(r)
            if by_channel is None:
                continue
            for c in (channel, "default"):
                if c in by_channel:
                    return by_channel[c]
        return self.output.fallback_message

    def cross_sell_allowed(
        self, intent: str, *, refund_in_progress: bool = False, handoff: bool = False
    ) -> bool:
        cs = self.cross_sell
        if handoff and cs.never_when_handoff:
            return False
        if refund_in_progress and cs.never_when_refund_in_progress:
            return False
        return intent in cs.allowed_intents


def default_policy_path() -> Path:
    return Path(__file__).parent / "data" / "policy.toml"


def load_policy(path: str | Path | None = None) -> Policy:
    """Read, type-check and validate a policy file; DataError says what is wrong."""
    p = Path(path) if path is not None else default_policy_path()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise DataError(f"policy file {p} cannot be read: {exc.strerror}") from None
    return parse_policy(raw, source=str(p))


def parse_policy(raw: bytes, source: str = "<policy>") -> Policy:
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(f"policy {source} is not valid TOML: {exc}") from None
    if "content_hash" in data:
        raise DataError(f"policy {source}: content_hash is computed, not set in the file")
    try:
        policy = msgspec.convert(data, Policy)
    except msgspec.ValidationError as exc:
        raise DataError(f"policy {source}: {exc}") from None
    _validate(policy, source)
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return msgspec.structs.replace(policy, content_hash=digest)


def _validate(policy: Policy, source: str) -> None:
    problems: list[str] = []
    if not _VERSION_RE.match(policy.version):
        problems.append(f"version {policy.version!r} is not YYYY.M.N")
    esc = policy.escalation
    if not 0.0 <= esc.min_confidence <= 1.0:
        problems.append("escalation.min_confidence must be in [0, 1]")
    if not -1.0 <= esc.negative_sentiment_threshold <= 1.0:
        problems.append("escalation.negative_sentiment_threshold must be in [-1, 1]")
    if esc.repeat_contact_limit < 1:
        problems.append("escalation.repeat_contact_limit must be >= 1")
    if esc.refund_auto_limit < 0 or policy.promises.max_refund_statement < 0:
        problems.append("refund limits must be >= 0")
    unknown = sorted(set(esc.rule_actions) - set(RULE_IDS))
    if unknown:
        problems.append(f"escalation.rule_actions: unknown rule ids {', '.join(unknown)}")
    problems += [f"escalation.rule_actions.{rule}: {action!r} is not one of "
                 f"{', '.join(sorted(_ACTIONS))}"
                 for rule, action in esc.rule_actions.items() if action not in _ACTIONS]
    if any(rate <= 0 for rate in esc.currency_rates.values()):
        problems.append("escalation.currency_rates must be > 0")
    out = policy.output
    if not 16 <= out.holdback_chars <= 4096:
        problems.append("output.holdback_chars must be in [16, 4096]")
    if not out.fallback_message.strip():
        problems.append("output.fallback_message must not be empty")
    named = [("output.order_id_pattern", out.order_id_pattern)]
    named += [("promises.compensation_patterns", p) for p in policy.promises.compensation_patterns]
    named += [
        ("promises.delivery_guarantee_patterns", p)
        for p in policy.promises.delivery_guarantee_patterns
    ]
    for where, pattern in named:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"{where}: bad regex {pattern!r} ({exc})")
    if any(not s.strip() for s in (*out.banned_phrases, *out.competitors)):
        problems.append("output.banned_phrases/competitors must not hold empty strings")
    if "default" not in policy.handoff or "default" not in policy.handoff["default"]:
        problems.append("handoff.default.default is required")
    problems += _retention_problems(policy.retention)
    if problems:
        raise DataError(f"policy {source}: " + "; ".join(problems))


def _retention_problems(r: RetentionPolicy) -> list[str]:
    problems = []
    days = ("follow_up_days", "cross_sell_days", "warranty_lead_days", "win_back_min_days",
            "win_back_single_order_days", "stale_days", "win_back_stale_days",
            "lookahead_days", "frequency_cap_days", "complaint_days")
    problems += [f"retention.{d} must be >= 0" for d in days if getattr(r, d) < 0]
    if r.win_back_factor <= 0 or r.replenish_shrink < 0 or r.frequency_cap < 1:
        problems.append("retention: win_back_factor > 0, replenish_shrink >= 0 and "
                        "frequency_cap >= 1 are required")
    for name in ("channels", "weights", "messages"):
        table: dict[str, object] = getattr(r, name)
        unknown = sorted(set(table) - set(RETENTION_KINDS))
        missing = sorted(set(RETENTION_KINDS) - set(table))
        if unknown or missing:
            problems.append(f"retention.{name}: unknown kinds {unknown}, missing {missing}")
    unknown = sorted(set(r.marketing_kinds) - set(RETENTION_KINDS))
    if unknown:
        problems.append(f"retention.marketing_kinds: unknown kinds {unknown}")
    if any(not 0.0 <= w <= 1.0 for w in r.weights.values()):
        problems.append("retention.weights must be in [0, 1]")
    for kind, text in r.messages.items():
        try:
            text.format(title="", order="", date="", days=0)
        except (KeyError, IndexError, ValueError):
            problems.append(
                f"retention.messages.{kind}: only {{title}}, {{order}}, {{date}}, {{days}}")
    return problems
