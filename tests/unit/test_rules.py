"""The rule registry is the one definition of the escalation rules; the refund limit
check keeps the currency (converted only by the policy's rates, else flagged)."""

from __future__ import annotations

import tomllib

import msgspec
import pytest

from server.errors import DataError
from server.governance.policy import default_policy_path, load_policy, parse_policy
from server.governance.routing import Router, RoutingInput
from server.governance.rules import BY_ID, RULES, describe


def _inp(**kw: object) -> RoutingInput:
    base: dict[str, object] = {"intent": "return_item", "confidence": 0.9,
                               "out_of_scope": False, "text": "I want my money back"}
    base.update(kw)
    return msgspec.convert(base, RoutingInput)


def test_registry_ids_priorities_and_policy_agree() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)) and len({r.priority for r in RULES}) == len(RULES)
    assert min(RULES, key=lambda r: r.priority).id == "safety_issue"
    shipped = tomllib.loads(default_policy_path().read_text())["escalation"]
    # Every action the shipped policy sets names a rule, and every rule's parameters
    # exist in the policy's escalation section.
    assert set(shipped["rule_actions"]) <= set(BY_ID)
    esc = load_policy().escalation
    for r in RULES:
        assert all(hasattr(esc, p) for p in r.params), r.id
        assert esc.action(r.id) in ("handoff", "flag", "offer")
    assert all(f"| {r.id} |" in describe() for r in RULES)


def test_unknown_rule_in_policy_is_rejected() -> None:
    raw = default_policy_path().read_bytes().replace(
        b'vip_rule = "offer"', b'vip_rule = "offer"\nvip_rules = "offer"')
    with pytest.raises(DataError, match="unknown rule ids vip_rules"):
        parse_policy(raw)


def test_dollars_are_not_compared_as_euros() -> None:
    router = Router(load_policy())  # no rates: other currencies are flagged, not converted
    d = router.route(_inp(requested_refund_amount=200.0, requested_refund_currency="USD"))
    assert "refund_currency_unknown" in d.rules_fired
    assert "refund_above_limit" not in d.rules_fired
    p = d.pending_approval[0]
    assert (p.reason, p.amount, p.currency, p.limit, p.limit_currency) == (
        "refund_currency_unknown", 200.0, "USD", 150.0, "EUR")
    euros = router.route(_inp(requested_refund_amount=140.0, requested_refund_currency="EUR"))
    assert euros.rules_fired == [] and euros.pending_approval == []


def test_rates_from_the_policy_convert() -> None:
    raw = default_policy_path().read_bytes().replace(
        b"currency_rates = {}", b"currency_rates = { USD = 0.9, GBP = 1.2 }")
    router = Router(parse_policy(raw))
    usd = router.route(_inp(requested_refund_amount=160.0, requested_refund_currency="USD"))
    assert usd.rules_fired == []  # 144 EUR: under the limit
    gbp = router.route(_inp(requested_refund_amount=130.0, requested_refund_currency="GBP"))
    assert gbp.rules_fired == ["refund_above_limit"]  # 156 EUR
    assert gbp.pending_approval[0].currency == "GBP"
    chf = router.route(_inp(requested_refund_amount=10.0, requested_refund_currency="CHF"))
    assert chf.rules_fired == ["refund_currency_unknown"]
    bad = raw.replace(b"USD = 0.9", b"USD = 0")
    with pytest.raises(DataError, match="currency_rates"):
        parse_policy(bad)
