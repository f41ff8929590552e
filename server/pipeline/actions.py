"""What an answer does besides its words: offers, pending approvals, the handoff."""

from __future__ import annotations

import uuid

import msgspec

from server.conversation.guide import FlowTurn
from server.generation.base import Chunk
from server.governance.routing import RouteDecision
from server.records.store import utcnow
from server.records.types import DecisionRecord, Handoff, PendingAction


class ActionOut(msgspec.Struct, frozen=True):
    kind: str
    product_ids: list[str] = []
    action_id: str = ""
    status: str = ""
    detail: str = ""


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def decision_actions(rec: DecisionRecord, decision: RouteDecision, cited: list[Chunk],
                     customer_id: str, flow: FlowTurn | None = None,
                     ) -> tuple[list[ActionOut], Handoff | None, list[PendingAction]]:
    """The actions of one answer: offers the client saw, pending approvals (refunds over
    the limit or in an unconvertible currency, a flow's approval step), the handoff."""
    now = utcnow()
    actions: list[ActionOut] = []
    pending: list[PendingAction] = []
    handoff = None
    offered = [sid for c in cited if c.role == "offer" for sid in c.source_ids]
    if offered:
        actions.append(ActionOut("cross_sell_offer", list(dict.fromkeys(offered)),
                                 status="offered"))
    for p in decision.pending_approval:
        action_id = new_id("act")
        order = rec.order_refs[0] if rec.order_refs else ""
        pending.append(PendingAction(
            action_id=action_id, decision_id=rec.decision_id,
            kind=f"{p.action}_pending_approval", state="pending",
            customer_id=rec.customer_id, order_id=order, amount=p.amount or 0.0,
            currency=p.currency,
            detail=(f"{p.reason}: {p.amount} {p.currency} against the automatic limit "
                    f"{p.limit} {p.limit_currency}"),
            created_at=now, updated_at=now))
        actions.append(ActionOut(f"{p.action}_pending_approval", action_id=action_id,
                                 status="pending", detail=p.reason))
    if flow is not None and flow.step.action == "approval" and decision.route != "human":
        # The flow ended on what an agent must approve (a replacement, a cancellation).
        action_id = new_id("act")
        step = flow.step
        pending.append(PendingAction(
            action_id=action_id, decision_id=rec.decision_id, kind="flow_pending_approval",
            state="pending", customer_id=rec.customer_id,
            order_id=flow.slots.get("order_id", ""), detail=f"{step.flow_id}/{step.step_id}",
            created_at=now, updated_at=now))
        actions.append(ActionOut("flow_pending_approval", action_id=action_id,
                                 status="pending", detail=f"{step.flow_id}/{step.step_id}"))
    if decision.route == "human":
        handoff = Handoff(
            handoff_id=new_id("ho"), decision_id=rec.decision_id,
            conversation_id=rec.conversation_id, customer_id=customer_id,
            state="pending", reason=decision.reason, rules_fired=decision.rules_fired,
            redacted_text=rec.redacted_input, intent=rec.intent, created_at=now,
            updated_at=now)
        actions.append(ActionOut("handoff", action_id=handoff.handoff_id, status="pending",
                                 detail=decision.reason))
    return actions, handoff, pending


