"""Record types: what a decision, a handoff, a pending action and feedback look like.

These are msgspec Structs; the API layer converts them to protobuf. A decision record
never holds raw PII: every text in it went through redaction first.
"""

from __future__ import annotations

from typing import Any

import msgspec

HANDOFF_STATES = ("pending", "claimed", "resolved")
ACTION_STATES = ("pending", "approved", "rejected")
OUTCOMES = ("completed", "cancelled", "fallback", "handed_off", "deadline_exceeded", "error")


class PassageUse(msgspec.Struct, frozen=True):
    id: str
    source_id: str
    score: float


class ViolationRecord(msgspec.Struct, frozen=True):
    rule: str
    action: str  # redact | block
    detail: str = ""


class DecisionRecord(msgspec.Struct, kw_only=True):
    decision_id: str
    conversation_id: str
    customer_id: str
    channel: str
    started_at: str  # ISO 8601 UTC
    finished_at: str = ""
    latencies_ms: dict[str, float] = {}
    redacted_input: str = ""
    pii_kinds: list[str] = []
    intent: str = ""
    confidence: float = 0.0
    out_of_scope: bool = False
    route: str = ""
    rules_fired: list[str] = []
    sentiment: float = 0.0
    model_versions: dict[str, str] = {}
    policy_version: str = ""
    index_version: str = ""
    snapshot_id: str = ""
    passages: list[PassageUse] = []
    facts: list[dict[str, Any]] = []
    violations: list[ViolationRecord] = []
    actions: list[dict[str, Any]] = []
    order_refs: list[str] = []  # order ids this contact was about (repeat-contact rule)
    final_text: str = ""
    outcome: str = ""
    fallbacks: list[str] = []  # degraded paths taken (generator_timeout, index_unavailable..)
    trace_id: str = ""  # OpenTelemetry trace id of the Respond call ("" = tracing off)
    # What the turn was linked to (server/conversation): choice, confidence, how, the
    # candidates considered, and the clarifying question when one was asked.
    link: dict[str, Any] = {}
    flow: dict[str, Any] = {}  # the guided-flow step of this turn, when one runs


class Handoff(msgspec.Struct, kw_only=True):
    handoff_id: str
    decision_id: str
    conversation_id: str
    customer_id: str
    state: str
    reason: str
    rules_fired: list[str] = []
    redacted_text: str = ""
    intent: str = ""
    agent_id: str = ""
    reply: str = ""
    created_at: str = ""
    updated_at: str = ""


class PendingAction(msgspec.Struct, kw_only=True):
    action_id: str
    decision_id: str
    kind: str
    state: str
    customer_id: str = ""
    order_id: str = ""
    amount: float = 0.0
    currency: str = ""  # of amount (ISO 4217)
    detail: str = ""
    agent_id: str = ""
    note: str = ""
    created_at: str = ""
    updated_at: str = ""


class Feedback(msgspec.Struct, kw_only=True):
    feedback_id: str
    decision_id: str
    csat: int = 0
    nps: int | None = None
    resolved: bool = False
    converted_order_id: str = ""
    text: str = ""  # redacted
    created_at: str = ""
