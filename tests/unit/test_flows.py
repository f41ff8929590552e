"""Guided flows: every shipped flow walked end to end through every branch, and the
loader's checks on broken definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.conversation.flow_facts import order_flow_facts
from server.conversation.flows import FlowEngine, FlowStep, load_flows, parse_flows
from server.errors import DataError, NotFound
from server.knowledge.graph.facts import Eligibility, OrderFacts, WarrantyFacts

ORDER = {"order_id": "O1"}
DELIVERED = {"order_status": "delivered"}

# (flow, slots, facts, step reached, needs_slot, action)
CASES: list[tuple[str, dict[str, str], dict[str, Any], str, str, str]] = [
    # damaged item
    ("damaged_item", {}, {}, "ask_order", "order_id", ""),
    ("damaged_item", ORDER, {**DELIVERED, "days_since_delivery": 3}, "ask_photo",
     "damage_photo", ""),
    ("damaged_item", {**ORDER, "damage_photo": "yes"}, {**DELIVERED, "days_since_delivery": 7},
     "replace", "", "approval"),
    ("damaged_item", ORDER, {**DELIVERED, "days_since_delivery": 20, "warranty_active": True},
     "warranty_route", "", "information"),
    ("damaged_item", ORDER, {**DELIVERED, "days_since_delivery": 20, "warranty_active": False},
     "agent", "", "handoff"),
    ("damaged_item", ORDER, {"order_status": "shipped"}, "not_arrived", "", "information"),
    ("damaged_item", ORDER, {"order_status": "processing"}, "not_arrived", "", "information"),
    ("damaged_item", ORDER, {"order_status": "returned"}, "agent", "", "handoff"),
    # wrong item
    ("wrong_item", {}, {}, "ask_order", "order_id", ""),
    ("wrong_item", ORDER, {**DELIVERED, "days_since_delivery": 14}, "ask_received",
     "received_item", ""),
    ("wrong_item", {**ORDER, "received_item": "a red mug"}, {**DELIVERED,
     "days_since_delivery": 1}, "exchange", "", "approval"),
    ("wrong_item", ORDER, {**DELIVERED, "days_since_delivery": 15}, "agent", "", "handoff"),
    ("wrong_item", ORDER, {"order_status": "shipped"}, "not_arrived", "", "information"),
    ("wrong_item", ORDER, {"order_status": "cancelled"}, "agent", "", "handoff"),
    # missing parcel
    ("missing_package", {}, {}, "ask_order", "order_id", ""),
    ("missing_package", ORDER, {"order_status": "processing"}, "not_shipped", "",
     "information"),
    ("missing_package", ORDER, {"order_status": "shipped", "days_since_shipping": 2},
     "in_transit", "", "information"),
    ("missing_package", ORDER, {"order_status": "shipped", "days_since_shipping": 9},
     "agent", "", "handoff"),
    ("missing_package", ORDER, {**DELIVERED, "days_since_delivery": 1}, "ask_searched",
     "searched_delivery_spot", ""),
    ("missing_package", {**ORDER, "searched_delivery_spot": "not found"},
     {**DELIVERED, "days_since_delivery": 1}, "carrier_claim", "", "approval"),
    ("missing_package", ORDER, {**DELIVERED, "days_since_delivery": 30}, "agent", "",
     "handoff"),
    ("missing_package", ORDER, {"order_status": "returned"}, "agent", "", "handoff"),
    # warranty claim
    ("warranty_claim", {}, {}, "ask_order", "order_id", ""),
    ("warranty_claim", ORDER, {"warranty_active": True}, "ask_product", "product_id", ""),
    ("warranty_claim", {**ORDER, "product_id": "P1"}, {"warranty_active": True}, "ask_fault",
     "fault_description", ""),
    ("warranty_claim", {**ORDER, "product_id": "P1", "fault_description": "no power"},
     {"warranty_active": True}, "claim", "", "approval"),
    ("warranty_claim", {**ORDER, "product_id": "P1"}, {"warranty_active": False}, "expired", "",
     "information"),
    ("warranty_claim", {**ORDER, "product_id": "P1"}, {}, "expired", "", "information"),
    # change address before shipping
    ("change_address", {}, {}, "ask_order", "order_id", ""),
    ("change_address", ORDER, {"order_status": "processing"}, "ask_address", "new_address", ""),
    ("change_address", {**ORDER, "new_address": "[ADDRESS]"}, {"order_status": "processing"},
     "change", "", "approval"),
    ("change_address", ORDER, {"order_status": "shipped"}, "too_late", "", "information"),
    ("change_address", ORDER, DELIVERED, "delivered", "", "information"),
    ("change_address", ORDER, {"order_status": "cancelled"}, "agent", "", "handoff"),
    # cancel before shipping
    ("cancel_order", {}, {}, "ask_order", "order_id", ""),
    ("cancel_order", ORDER, {"order_status": "processing"}, "confirm", "cancel_confirmed", ""),
    ("cancel_order", {**ORDER, "cancel_confirmed": "yes"}, {"order_status": "processing"},
     "cancel", "", "approval"),
    ("cancel_order", ORDER, {"order_status": "shipped"}, "refuse_delivery", "", "information"),
    ("cancel_order", ORDER, DELIVERED, "return_instead", "", "information"),
    ("cancel_order", ORDER, {"order_status": "cancelled"}, "already_cancelled", "",
     "information"),
    ("cancel_order", ORDER, {"order_status": "returned"}, "agent", "", "handoff"),
    ("cancel_order", ORDER, {}, "agent", "", "handoff"),  # status unknown: a human decides
]
SHIPPED = ("damaged_item", "wrong_item", "missing_package", "warranty_claim", "change_address",
           "cancel_order")


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    return load_flows()


def test_the_demo_shop_flows_ship_and_start_from_their_intents(engine: FlowEngine) -> None:
    assert set(SHIPPED) <= set(engine.flow_ids)
    for flow_id in SHIPPED:
        assert engine.flow_for_intent(flow_id) == flow_id
    assert engine.flow_for_intent("praise") is None


@pytest.mark.parametrize(("flow_id", "slots", "facts", "step", "slot", "action"), CASES)
def test_each_shipped_flow_walks_to_the_expected_step(
        engine: FlowEngine, flow_id: str, slots: dict[str, str], facts: dict[str, Any],
        step: str, slot: str, action: str) -> None:
    got = engine.start(flow_id, slots, facts)
    assert (got.step_id, got.needs_slot, got.action, got.done) == (step, slot, action,
                                                                  bool(action))
    assert got.text.strip() and "{" not in got.text
    # Resuming from the first step with the same knowledge lands in the same place.
    assert engine.advance(flow_id, engine.flow(flow_id).steps[0].id, slots, facts) == got


def test_the_cases_reach_every_asking_and_final_step_of_every_flow(engine: FlowEngine) -> None:
    reached = {(c[0], c[3]) for c in CASES}
    for flow_id in SHIPPED:
        visible = {s.id for s in engine.flow(flow_id).steps if s.needs or s.action}
        assert visible == {s for f, s in reached if f == flow_id}, flow_id


def test_a_flow_resumes_where_it_waited_once_the_slot_is_filled(engine: FlowEngine) -> None:
    facts = {"order_status": "processing"}
    first = engine.start("cancel_order", {}, facts)
    assert first.needs_slot == "order_id" and first.facts_checked == []
    second = engine.advance("cancel_order", first.step_id, {"order_id": "O7"}, facts)
    assert second == FlowStep("cancel_order", "confirm", second.text,
                              needs_slot="cancel_confirmed", facts_checked=["order_status"])
    last = engine.advance("cancel_order", second.step_id,
                          {"order_id": "O7", "cancel_confirmed": "yes"}, facts)
    assert (last.step_id, last.action, last.done, last.facts_checked) == (
        "cancel", "approval", True, [])
    # At the end the flow stays at its end.
    assert engine.advance("cancel_order", "cancel", {}, facts) == last


def test_facts_match_by_type_and_bounds(engine: FlowEngine) -> None:
    slots = {"order_id": "O1", "product_id": "P1"}
    assert engine.start("warranty_claim", slots, {"warranty_active": 1}).step_id == "expired"
    assert engine.start("warranty_claim", slots, {"warranty_active": "true"}).step_id == \
        "expired"
    dmg = {**DELIVERED, "days_since_delivery": True}  # not a number of days
    assert engine.start("damaged_item", {"order_id": "O1"}, dmg).step_id == "agent"


def test_unknown_flows_and_steps_are_not_found(engine: FlowEngine) -> None:
    with pytest.raises(NotFound):
        engine.start("nope", {}, {})
    with pytest.raises(NotFound):
        engine.advance("cancel_order", "nope", {}, {})


def _doc(*steps: dict[str, Any], **flow: Any) -> dict[str, Any]:
    return {"flows": [{"id": "f", "intents": ["x"], "steps": list(steps), **flow}]}


END = {"id": "end", "text": "Done.", "action": "information"}


@pytest.mark.parametrize(("doc", "message"), [
    (_doc({"id": "a", "next": "b"}, END), "unknown next step"),
    (_doc({"id": "a", "branches": [{"fact": "order_status", "in": ["x"], "next": "end"}]},
          END), "default"),
    (_doc({"id": "a", "branches": [{"fact": "order_status", "next": "end"}, {"next": "end"}]},
          END), "no condition"),
    (_doc({"id": "a", "next": "b"}, {"id": "b", "next": "a"}), "cycle"),
    (_doc({"id": "a", "next": "end"}, END, {"id": "lost", "text": "?", "action": "handoff"}),
     "unreachable"),
    (_doc({"id": "a", "text": "Hi {name}", "action": "information"}), "placeholders"),
    (_doc({"id": "a", "needs": ["order_id"], "next": "end"}, END), "needs text"),
    (_doc({"id": "a", "text": "x", "action": "information", "next": "end"}, END),
     "exactly one"),
    (_doc({"id": "a", "text": "x", "action": "refund"}), "invalid flow file"),
    (_doc({"id": "a", "text": "x", "action": "information", "ask": "typo"}),
     "invalid flow file"),
    ({"format": 2, "flows": []}, "format"),
    ({"flows": [_doc(END)["flows"][0], _doc(END)["flows"][0]]}, "defined twice"),
])
def test_broken_definitions_are_load_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_flows(doc, "test")


def test_a_shop_file_overrides_a_default_flow_and_adds_its_own(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text("""
[[flows]]
id = "cancel_order"
intents = ["cancel_subscription"]
[[flows.steps]]
id = "only"
text = "Subscriptions are cancelled under My Account."
action = "information"
""")
    engine = load_flows([path])
    assert engine.flow_for_intent("cancel_subscription") == "cancel_order"
    assert engine.flow_for_intent("cancel_order") is None  # the override dropped the claim
    assert engine.start("cancel_order", {}, {}).step_id == "only"
    assert engine.flow("cancel_order").source == str(path)
    assert engine.flow_for_intent("damaged_item") == "damaged_item"
    assert load_flows([path], defaults=False).flow_ids == ["cancel_order"]
    with pytest.raises(DataError, match="not found"):
        load_flows([tmp_path / "missing.toml"])


NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _order(status: str, shipped: int | None, delivered: int | None) -> OrderFacts:
    def ago(days: int | None) -> datetime | None:
        return None if days is None else NOW - timedelta(days=days, hours=1)

    return OrderFacts("O1", status, NOW - timedelta(days=40), ago(shipped), ago(delivered),
                      50.0, "EUR", [])


def test_order_flow_facts_feed_the_flows(engine: FlowEngine) -> None:
    elig = [Eligibility("O1", "P1", True, "eligible", "", None, 30, "POL", "1"),
            Eligibility("O1", "P2", False, "window_expired", "", None, 30, "POL", "1")]
    war = [WarrantyFacts("W1", "O1", "P2", "Lamp", "manufacturer", NOW, NOW, False, 0, "")]
    facts = order_flow_facts(_order("delivered", 5, 3), NOW, eligibility=elig, warranties=war)
    assert facts == {"order_status": "delivered", "days_since_shipping": 5,
                     "days_since_delivery": 3, "within_return_window": True,
                     "warranty_active": False}
    item = order_flow_facts(_order("delivered", 5, 3), NOW, eligibility=elig, product_id="P2")
    assert item["within_return_window"] is False and "warranty_active" not in item
    pending = order_flow_facts(_order("processing", None, None), NOW)
    assert pending == {"order_status": "processing"}
    step = engine.start("damaged_item", {"order_id": "O1"}, facts)
    assert step.step_id == "ask_photo"


def test_the_flows_check_command_reports_or_refuses(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from server.cli import main

    good = tmp_path / "good.toml"
    good.write_text('[[flows]]\nid = "praise"\nintents = ["praise"]\n[[flows.steps]]\n'
                    'id = "thanks"\ntext = "Thank you!"\naction = "information"\n')
    assert main(["flows", "check", "--no-shared", str(good)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    ids = {d["id"]: d for d in out["details"]}
    assert out["flows"] == 7 and ids["praise"]["ends"] == ["information"]
    assert ids["cancel_order"]["slots"] == ["cancel_confirmed", "order_id"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[flows]]\nid = "x"\n[[flows.steps]]\nid = "a"\nnext = "nowhere"\n')
    assert main(["flows", "check", "--no-shared", str(bad)]) == 2
    assert "unknown next step 'nowhere'" in capsys.readouterr().err
