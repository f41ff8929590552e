"""Guided flows in a conversation: a flow starts on its intent with the linked order,
waits for a slot, resumes on the next turn with the reply, ends with its action; a
decline drops it, another topic leaves it waiting; each shipped flow runs end to end."""

from __future__ import annotations

from typing import Any

import pytest

from server.conversation.flows import load_flows
from server.conversation.guide import flow_turn, slots_to_keep
from server.conversation.linker import Link
from server.conversation.state import Turn, after_turn, begin
from server.conversation.turns import TurnPlan
from tests.unit.test_linker import NOW

ENGINE = load_flows()


def _facts(status: str, days: int = 2, warranty: bool = True) -> Any:
    def facts_for(order_id: str, product_id: str) -> dict[str, Any]:
        if not order_id:
            return {}
        return {"order_status": status, "days_since_delivery": days,
                "days_since_shipping": days + 1, "warranty_active": warranty,
                "within_return_window": days <= 30}
    return facts_for


def _plan(intent: str, order: str = "O0000854", product: str = "") -> TurnPlan:
    return TurnPlan(intent, Link(order, product, 1.0, "id") if order else Link())


def _walk(intent: str, replies: list[str], status: str, days: int = 2,
          warranty: bool = True, product: str = "SHO-0001") -> list[Any]:
    """Run a conversation: the first turn names order and item, then the replies."""
    state = begin(None, "c1", "C1", NOW, 1800)
    steps = []
    texts = [f"{intent} about order 854", *replies]
    for i, text in enumerate(texts):
        plan = _plan(intent, "O0000854", product) if i == 0 else TurnPlan(intent, Link())
        turn, drop = flow_turn(ENGINE, state, plan, "praise" if i else intent,
                               0.3 if i else 0.9, text, _facts(status, days, warranty))
        assert not drop and turn is not None
        steps.append(turn.step)
        state = after_turn(state, Turn(NOW.isoformat(), text, intent), plan.link, None,
                           turn.position, slots_to_keep(turn))
    return steps


@pytest.mark.parametrize("intent,status,days,replies,end,action", [
    ("damaged_item", "delivered", 2, ["here is the photo"], "replace", "approval"),
    ("damaged_item", "delivered", 40, [], "warranty_route", "information"),
    ("damaged_item", "shipped", 0, [], "not_arrived", "information"),
    ("wrong_item", "delivered", 3, ["I got a blue one instead"], "exchange", "approval"),
    ("missing_package", "processing", 0, [], "not_shipped", "information"),
    ("warranty_claim", "delivered", 100, ["it does not switch on"], "claim", "approval"),
    ("change_address", "processing", 0, ["[ADDRESS]"], "change", "approval"),
    ("change_address", "shipped", 1, [], "too_late", "information"),
    ("cancel_order", "processing", 0, ["yes please"], "cancel", "approval"),
    ("cancel_order", "delivered", 5, [], "return_instead", "information"),
])
def test_each_shipped_flow_runs_across_turns(intent: str, status: str, days: int,
                                             replies: list[str], end: str,
                                             action: str) -> None:
    steps = _walk(intent, replies, status, days)
    assert steps[-1].flow_id == intent
    assert (steps[-1].step_id, steps[-1].action, steps[-1].done) == (end, action, True)
    assert all(s.needs_slot and not s.done for s in steps[:-1])  # each earlier turn asked


def test_flow_waits_for_the_order_and_resumes_with_the_link() -> None:
    state = begin(None, "c1", "C1", NOW, 1800)
    turn, _ = flow_turn(ENGINE, state, _plan("damaged_item", ""), "damaged_item", 0.9,
                        "my parcel arrived damaged", _facts("delivered"))
    assert turn is not None and turn.step.needs_slot == "order_id"
    state = after_turn(state, Turn(NOW.isoformat(), "x", "damaged_item"), Link(), None,
                       turn.position)
    turn, _ = flow_turn(ENGINE, state, _plan("order_status", "O0000854"), "order_status", 0.4,
                        "it was order 854", _facts("delivered"))
    assert turn is not None and turn.resumed and turn.step.needs_slot == "damage_photo"
    assert "order_status" in turn.step.facts_checked
    record = turn.record()
    assert record["flow_id"] == "damaged_item" and record["slots"] == ["order_id"]


def test_decline_drops_the_flow_and_another_topic_leaves_it_waiting() -> None:
    state = begin(None, "c1", "C1", NOW, 1800)
    turn, _ = flow_turn(ENGINE, state, _plan("cancel_order"), "cancel_order", 0.9,
                        "cancel order 854", _facts("processing"))
    assert turn is not None and turn.step.needs_slot == "cancel_confirmed"
    state = after_turn(state, Turn(NOW.isoformat(), "x", "cancel_order"), Link("O0000854"),
                       None, turn.position)
    none, drop = flow_turn(ENGINE, state, TurnPlan("cancel_order", Link()), "cancel_order",
                           0.5, "no, keep it", _facts("processing"))
    assert none is None and drop
    other, drop = flow_turn(ENGINE, state, TurnPlan("delivery_options", Link()),
                            "delivery_options", 0.95, "do you ship to Canada?",
                            _facts("processing"))
    assert other is None and not drop  # still waiting for the confirmation
    dropped = after_turn(state, Turn(NOW.isoformat(), "no", "cancel_order"), Link(), None,
                         drop_flow=True)
    assert dropped.flow is None


def test_no_flow_on_a_question_or_without_an_engine() -> None:
    state = begin(None, "c1", "C1", NOW, 1800)
    asking = TurnPlan("damaged_item", Link(), question="Which order do you mean: ...?")
    assert flow_turn(ENGINE, state, asking, "damaged_item", 0.9, "x", _facts("delivered")) == (
        None, False)
    assert flow_turn(None, state, _plan("damaged_item"), "damaged_item", 0.9, "x",
                     _facts("delivered")) == (None, False)


def _playbook(source: str) -> Any:
    doc = {"flows": [{"id": "pb.refund_status", "intents": ["refund_status", "pb_only"],
                      "source": source, "steps": [
                          {"id": "pull-up-account", "needs": ["customer_name"], "next": "end",
                           "text": "To pull up your account, could you give me your full name?"},
                          {"id": "end", "action": "information", "text": "Here is what we know."},
                      ]}]}
    return load_flows(documents=[(source, doc)])


def test_never_ask_a_signed_in_customer_what_is_on_file() -> None:
    engine = _playbook("shop")
    signed_in = begin(None, "c1", "C1", NOW, 1800)
    turn, _ = flow_turn(engine, signed_in, _plan("refund_status"), "refund_status", 0.9,
                        "where is my refund?", _facts("delivered"))
    assert turn is not None and turn.step.done and turn.step.step_id == "end"
    assert "customer_name" not in turn.record()["slots"]
    assert "flow.customer_name" not in slots_to_keep(turn)
    visitor = begin(None, "c2", "", NOW, 1800)
    turn, _ = flow_turn(engine, visitor, _plan("refund_status", ""), "refund_status", 0.9,
                        "where is my refund?", _facts("delivered"))
    assert turn is not None and turn.step.needs_slot == "customer_name"


def test_a_shared_playbook_does_not_replace_the_shops_own_answer() -> None:
    engine = _playbook("abcd")
    state = begin(None, "c1", "C1", NOW, 1800)
    own = frozenset({"refund_status"})
    assert flow_turn(engine, state, _plan("refund_status"), "refund_status", 0.9, "x",
                     _facts("delivered"), own_answers=own) == (None, False)
    turn, _ = flow_turn(engine, state, _plan("pb_only"), "pb_only", 0.9, "x",
                        _facts("delivered"), own_answers=own)
    assert turn is not None and turn.step.flow_id == "pb.refund_status"
