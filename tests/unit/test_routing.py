"""Routing rules: each fires and does not fire; priorities, pending approvals, amounts."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from server.governance.policy import Policy, load_policy
from server.governance.routing import (
    Money,
    Router,
    RoutingInput,
    extract_amounts,
    parse_amount,
    route,
)

NEUTRAL = "Where is my order A10023?"


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="module")
def router(policy: Policy) -> Router:
    return Router(policy)


def inp(**kw: Any) -> RoutingInput:
    base: dict[str, Any] = {
        "intent": "order_status",
        "confidence": 0.9,
        "out_of_scope": False,
        "text": NEUTRAL,
    }
    base.update(kw)
    return RoutingInput(**base)


def test_baseline_is_automated(router: Router) -> None:
    d = router.route(inp())
    assert d.route == "automated" and d.rules_fired == [] and d.reason == ""
    assert d.handoff_message == "" and d.pending_approval == [] and not d.offer_human
    assert d.cross_sell_allowed
    assert d.policy_version == "2026.12.1"


@pytest.mark.parametrize(
    ("rule", "fires", "quiet"),
    [
        ("out_of_scope", {"out_of_scope": True}, {"out_of_scope": False}),
        ("low_confidence", {"confidence": 0.54}, {"confidence": 0.55}),
        ("asked_for_human", {"intent": "talk_to_human"}, {"intent": "order_status"}),
        (
            "asked_for_human",
            {"text": "Can I speak to a real person please?"},
            {"text": "Is this person-sized tent in stock?"},
        ),
        (
            "asked_for_human",
            {"text": "I want to talk to your manager"},
            {"text": "The manager mode of the app is great"},
        ),
        (
            "negative_sentiment",
            {"text": "This is RIDICULOUS, the worst service ever!!!"},
            {"text": "Not bad, but the box was slightly damaged."},
        ),
        (
            "legal_threat",
            {"text": "I will take this to small claims court"},
            {"text": "The lawn mower claims to be quiet."},
        ),
        (
            "legal_threat",
            {"text": "Refund me or I file a chargeback"},
            {"text": "Refund me please"},
        ),
        (
            "safety_issue",
            {"text": "The charger caught fire last night"},
            {"text": "The charger is slow"},
        ),
        (
            "safety_issue",
            {"text": "My son was choking on a small part"},
            {"text": "My son loves it"},
        ),
        (
            "refund_above_limit",
            {"requested_refund_amount": 150.01},
            {"requested_refund_amount": 150.0},
        ),
        ("repeat_contact", {"repeat_contacts": 3}, {"repeat_contacts": 2}),
        (
            "vip_rule",
            {"segment": "vip", "intent": "complaint"},
            {"segment": "standard", "intent": "complaint"},
        ),
        (
            "vip_rule",
            {"segment": "vip", "intent": "damaged_item"},
            {"segment": "vip", "intent": "order_status"},
        ),
    ],
)
def test_rule_fires_and_stays_quiet(router: Router, rule: str, fires: dict, quiet: dict) -> None:
    assert rule in router.route(inp(**fires)).rules_fired
    assert rule not in router.route(inp(**quiet)).rules_fired


@pytest.mark.parametrize(
    ("kw", "route_", "reason"),
    [
        ({"out_of_scope": True}, "human", "out_of_scope"),
        ({"confidence": 0.2}, "human", "low_confidence"),
        ({"intent": "talk_to_human"}, "human", "asked_for_human"),
        ({"repeat_contacts": 5}, "human", "repeat_contact"),
        ({"text": "my lawyer will contact you"}, "human", "legal_threat"),
        ({"requested_refund_amount": 400.0}, "automated", ""),
        ({"segment": "vip", "intent": "complaint"}, "automated", ""),
    ],
)
def test_handoff_versus_flag(
    router: Router, policy: Policy, kw: dict, route_: str, reason: str
) -> None:
    d = router.route(inp(**kw))
    assert d.route == route_ and d.reason == reason
    if route_ == "human":
        assert d.handoff_message == policy.handoff_message(reason)
        assert not d.cross_sell_allowed


def test_refund_above_limit_is_pending_approval(router: Router) -> None:
    d = router.route(inp(intent="return_item", requested_refund_amount=420.5))
    assert d.route == "automated"
    assert [(p.action, p.reason, p.amount, p.limit) for p in d.pending_approval] == [
        ("refund", "refund_above_limit", 420.5, 150.0)
    ]
    assert not d.cross_sell_allowed


def test_vip_offer(router: Router) -> None:
    d = router.route(inp(segment="vip", intent="complaint", text="The lid is loose."))
    assert d.rules_fired == ["vip_rule"] and d.offer_human and d.route == "automated"


def test_safety_beats_everything(router: Router, policy: Policy) -> None:
    d = router.route(
        inp(
            intent="talk_to_human",
            confidence=0.1,
            repeat_contacts=9,
            text="It gave me an electric shock, my lawyer hears of this!!!",
        )
    )
    assert d.reason == "safety_issue"
    assert {
        "safety_issue",
        "legal_threat",
        "asked_for_human",
        "low_confidence",
        "repeat_contact",
    } <= set(d.rules_fired)
    assert d.handoff_message == policy.handoff_message("safety_issue")


def test_negative_sentiment_records_score(router: Router, policy: Policy) -> None:
    d = router.route(inp(text="Absolutely useless, still waiting, fed up!!!", channel="chat"))
    assert d.reason == "negative_sentiment"
    assert d.sentiment <= policy.escalation.negative_sentiment_threshold
    assert d.handoff_message == policy.handoff_message("negative_sentiment", "chat")


def test_channel_specific_message(router: Router, policy: Policy) -> None:
    d = router.route(inp(intent="talk_to_human", channel="chat"))
    assert d.handoff_message == policy.handoff["asked_for_human"]["chat"]


def test_actions_come_from_policy(policy: Policy) -> None:
    esc = policy.escalation
    strict = msgspec.structs.replace(
        policy,
        escalation=msgspec.structs.replace(
            esc,
            rule_actions={**esc.rule_actions, "refund_above_limit": "handoff"},
        ),
    )
    d = route(inp(requested_refund_amount=999.0), strict)
    assert d.route == "human" and d.reason == "refund_above_limit"
    assert d.pending_approval[0].amount == 999.0


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1,299.00", 1299.0),
        ("1.299,00", 1299.0),
        ("24,95", 24.95),
        ("1 050", 1050.0),
        ("89.9", 89.9),
        ("1,050", 1050.0),
        ("12", 12.0),
    ],
)
def test_parse_amount(raw: str, value: float) -> None:
    assert parse_amount(raw) == value


def test_extract_amounts() -> None:
    text = "I paid €1,299.00, then 45 euros and $12.50, plus 1.299,00 € and GBP 30 on 2026-11-15."
    got = extract_amounts(text)
    assert [(m.amount, m.currency) for m in got] == [
        (1299.0, "EUR"),
        (45.0, "EUR"),
        (12.5, "USD"),
        (1299.0, "EUR"),
        (30.0, "GBP"),
    ]
    assert text[got[0].start : got[0].end] == "€1,299.00"
    assert extract_amounts("Order A10023 of 2026-11-15, 3 items, SKU-PH-0012") == []
    assert extract_amounts("refund 40 EUR") == [Money(40.0, "EUR", 7, 13)]
