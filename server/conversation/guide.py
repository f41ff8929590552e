"""Guided flows in a conversation: start, resume across turns, fill slots, record steps.

The flow engine (flows.py) is pure over (flow, step, slots, facts); this module decides,
per turn, which flow runs and with what:
- a turn whose intent starts a flow (FlowEngine.flow_for_intent) starts it, with the
  linked order and item as the `order_id`/`product_id` slots;
- a flow waiting for a slot resumes when the turn gives it: an order or item the turn
  is linked to, or, for a free-text slot (a photo, a description, a new address,
  "yes"), the reply itself, unless the reply clearly starts something else (another
  intent family, classified with `switch_confidence` or more) or declines;
- a finished flow is not resumed; a declined one is dropped;
- never ask for what the facts answer: for a signed-in customer the identity slots
  (name, account id, username, email, zip code) are on file, and a flow from a shared
  playbook (ABCD, source "abcd", written for another shop's agents) does not replace
  the shop's own answer for an intent the composer has a plan for: ABCD's
  `refund_status` would ask a signed-in customer for their full name and then say the
  system "does not show this" for a fact (`oracle_confirms`) this shop never computes.
The slot values kept are redacted text or the shop's own ids (no raw PII).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from server.conversation.flows import FlowEngine, FlowStep
from server.conversation.state import ConversationState, FlowPosition
from server.conversation.turns import TurnPlan, family

ID_SLOTS = ("order_id", "product_id")
IDENTITY_SLOTS = ("customer_name", "account_id", "username", "email", "zip_code")
ON_FILE = "[on file]"
SHARED_PLAYBOOKS = frozenset({"abcd"})
MAX_SLOT_CHARS = 200
_DECLINE = re.compile(r"^\s*(?:no|nope|no thanks?|don'?t|do not|never ?mind|cancel that|stop)\b",
                      re.IGNORECASE)


class FlowTurn(msgspec.Struct, frozen=True):
    step: FlowStep
    slots: dict[str, str]  # the flow's slots after this turn
    resumed: bool  # the flow was running before this turn

    @property
    def position(self) -> FlowPosition:
        return FlowPosition(self.step.flow_id, self.step.step_id, self.step.needs_slot,
                            self.step.done)

    def record(self) -> dict[str, Any]:
        """The step for the decision record."""
        out: dict[str, Any] = msgspec.to_builtins(self.step)
        out["resumed"] = self.resumed
        # Which slots are filled, not their values.
        out["slots"] = sorted(k for k, v in self.slots.items() if v != ON_FILE)
        return out


def _id_slots(plan: TurnPlan, signed_in: bool) -> dict[str, str]:
    out = dict.fromkeys(IDENTITY_SLOTS, ON_FILE) if signed_in else {}
    link = plan.link
    if link.order_id and not link.ambiguous:
        out["order_id"] = link.order_id
        if link.product_id:
            out["product_id"] = link.product_id
    return out


def flow_turn(engine: FlowEngine | None, state: ConversationState, plan: TurnPlan,
              classified: str, confidence: float, text: str,
              facts_for: Callable[[str, str], dict[str, Any]],
              switch_confidence: float = 0.8,
              own_answers: frozenset[str] = frozenset()) -> tuple[FlowTurn | None, bool]:
    """(the flow step this turn reaches or None when no flow runs, whether the running
    flow was declined and is dropped). `facts_for(order_id, product_id)` gives the flow
    facts of the linked order (flow_facts.py); `own_answers`: the intents the shop
    answers itself (the composer's plans), which a shared playbook's flow does not take."""
    if engine is None or plan.question:
        return None, False
    ids = _id_slots(plan, bool(state.customer_id))
    pos = state.flow
    if pos is not None and not pos.done and pos.flow_id in engine.flow_ids:
        slots = {k: v for k, v in state.slots.items() if k.startswith("flow.")}
        slots = {k[len("flow."):]: v for k, v in slots.items()}
        slots.update({k: state.slots[k] for k in ID_SLOTS if state.slots.get(k)})
        slots.update(ids)
        waiting = pos.needs_slot
        flow_intents = engine.flow(pos.flow_id).intents
        other = (classified not in flow_intents and confidence >= switch_confidence
                 and family(classified) not in {family(i) for i in flow_intents})
        if waiting and waiting not in ID_SLOTS and not slots.get(waiting):
            if _DECLINE.search(text):
                return None, True
            if not other:
                slots[waiting] = text.strip()[:MAX_SLOT_CHARS]
        if not other or (waiting and slots.get(waiting)):
            facts = facts_for(slots.get("order_id", ""), slots.get("product_id", ""))
            step = engine.advance(pos.flow_id, pos.step_id, slots, facts)
            return FlowTurn(step, slots, resumed=True), False
    flow_id = engine.flow_for_intent(plan.intent)
    if flow_id is None or (engine.flow(flow_id).source in SHARED_PLAYBOOKS
                           and plan.intent in own_answers):
        return None, False
    facts = facts_for(ids.get("order_id", ""), ids.get("product_id", ""))
    return FlowTurn(engine.start(flow_id, ids, facts), ids, resumed=False), False


def slots_to_keep(turn: FlowTurn | None) -> dict[str, str]:
    """The flow's free-text slots, for the conversation state (ids are kept as they are)."""
    if turn is None:
        return {}
    return {f"flow.{k}": v for k, v in turn.slots.items()
            if k not in ID_SLOTS and v != ON_FILE}
