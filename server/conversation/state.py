"""Conversation state and its pure state machine.

Per `conversation_id`: the last turns (redacted text only), the current intent, the
slots filled so far (order id, product id, return reason, ...), the open question when
one was asked, and the guided-flow step. The machine:

- `begin`: the state a new turn starts from. An expired state (idle longer than
  `idle_s`) or one that belongs to another customer starts over.
- `resume`: a turn that answers the open question ("the chocolate", "the second one",
  "O0000854") fills the slot and continues the question's intent.
- `carry`: a turn with no reference of its own ("and can I still return it?") keeps the
  order and item of the turn before.
- `after_turn`: the state to store once the turn is answered.

No raw PII: texts are redacted before they get here; slots hold the shop's own ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import msgspec

from server.conversation.linker import Candidate, Link, ProductInfo, resolve_answer

MAX_TURNS = 10


class Turn(msgspec.Struct, frozen=True):
    at: str  # ISO 8601 UTC
    text: str  # redacted customer text
    intent: str
    order_id: str = ""
    product_id: str = ""
    route: str = ""
    asked: bool = False  # the answer was a clarifying question


class OpenQuestion(msgspec.Struct, frozen=True):
    kind: str  # "which_order" | "order_id"
    intent: str  # the intent to continue once answered
    candidates: list[Candidate] = []
    asked_at: str = ""


class FlowPosition(msgspec.Struct, frozen=True):
    flow_id: str
    step_id: str
    needs_slot: str = ""
    done: bool = False


class ConversationState(msgspec.Struct, frozen=True):
    conversation_id: str
    customer_id: str
    updated_at: str
    intent: str = ""
    slots: dict[str, str] = {}
    open_question: OpenQuestion | None = None
    flow: FlowPosition | None = None
    turns: list[Turn] = []


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def expired(state: ConversationState, now: datetime, idle_s: float) -> bool:
    return (now - parse_time(state.updated_at)).total_seconds() > idle_s


def begin(state: ConversationState | None, conversation_id: str, customer_id: str,
          now: datetime, idle_s: float) -> ConversationState:
    """The state this turn starts from: the stored one, or a fresh one when there is none,
    it has expired, or it belongs to another customer."""
    if (state is None or state.customer_id != customer_id or expired(state, now, idle_s)):
        return ConversationState(conversation_id, customer_id, now.isoformat())
    return state


def resume(state: ConversationState, text: str, products: Mapping[str, ProductInfo],
           now: datetime) -> Link | None:
    """The link an answer to the open question gives (None: the turn answers nothing)."""
    q = state.open_question
    if q is None or q.kind != "which_order":
        return None
    picked = resolve_answer(text, q.candidates, products, now)
    if picked is None:
        return None
    return Link(picked.order_id, picked.product_id, 0.95, "answer", list(q.candidates))


def carry(state: ConversationState) -> Link | None:
    """The previous turn's order and item, for a turn that names none of its own."""
    order = state.slots.get("order_id", "")
    if not order:
        return None
    return Link(order, state.slots.get("product_id", ""), 0.85, "state")


def after_turn(state: ConversationState, turn: Turn, link: Link,
               question: OpenQuestion | None, flow: FlowPosition | None = None,
               slots: Mapping[str, str] | None = None,
               drop_flow: bool = False) -> ConversationState:
    """The state once this turn is answered: the turn appended, the link in the slots,
    the question asked now (or none: an answered question is closed), the flow's new
    position (None: unchanged; `drop_flow`: none any more; a finished flow's own slots
    are let go)."""
    new_slots = dict(state.slots)
    if link.order_id:
        new_slots["order_id"] = link.order_id
        if link.product_id:
            new_slots["product_id"] = link.product_id
        elif new_slots.get("order_id") != state.slots.get("order_id"):
            new_slots.pop("product_id", None)
    new_slots.update(slots or {})
    position = None if drop_flow else (flow if flow is not None else state.flow)
    if position is None or position.done:
        new_slots = {k: v for k, v in new_slots.items() if not k.startswith("flow.")}
    turns: Sequence[Turn] = [*state.turns, turn][-MAX_TURNS:]
    return msgspec.structs.replace(
        state, updated_at=turn.at, intent=turn.intent, slots=new_slots,
        open_question=question, flow=position, turns=list(turns))
