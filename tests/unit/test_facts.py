"""Facts over the tiny shop: orders, return eligibility edge cases, warranties, refunds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from server.errors import NotFound
from server.knowledge.graph.facts import Facts
from tests.unit.test_graph import AS_OF, tiny_shop


@pytest.fixture
def facts() -> Facts:
    return Facts(tiny_shop())


def test_customer_orders_newest_first_with_titles(facts: Facts) -> None:
    orders = facts.customer_orders("c1", limit=3)
    assert [o.order_id for o in orders] == ["o4", "o2", "o1"]
    o2 = orders[1]
    assert o2.status == "delivered" and o2.total == 60.0
    assert [(i.title, i.returned) for i in o2.items] == [("Coffee Beans", False),
                                                        ("Headphones", True)]
    assert orders[0].delivered_at is None and orders[0].shipped_at is None
    assert facts.customer_orders("c3") == []
    assert len(facts.customer_orders("c1", limit=0)) == 0


def test_last_day_of_window_is_eligible_and_the_day_after_is_not(facts: Facts) -> None:
    e = facts.return_eligibility("o1", "p-phone")  # delivered 10-16, now 11-15 12:00
    assert e.eligible and e.code == "eligible" and e.window_days == 30
    assert e.deadline == datetime(2026, 11, 15, 23, 59, 59, 999999, tzinfo=UTC)
    assert (e.policy_id, e.policy_version) == ("pol-returns", "2")  # highest version
    late = facts.return_eligibility("o1", "p-phone", now=AS_OF + timedelta(days=1))
    assert not late.eligible and late.code == "window_expired"
    assert late.deadline == e.deadline and "2026-11-15" in late.reason


def test_vip_window_applies_to_vip_customers_only(facts: Facts) -> None:
    vip = facts.return_eligibility("o5", "p-phone")  # delivered 51 days ago
    assert vip.eligible and vip.window_days == 60
    # Same delivery age for a standard customer: o3 (c1) delivered 09-22, 54 days ago.
    std = facts.return_eligibility("o3", "p-coffee")
    assert not std.eligible and std.code == "window_expired" and std.window_days == 30


def test_consumables_get_an_unopened_caveat_when_the_policy_says_so() -> None:
    snap = tiny_shop()
    snap.policies = [msgspec.structs.replace(
        p, params={**p.params, "opened_consumables_returnable": False})
        if p.policy_id == "pol-returns" else p for p in snap.policies]
    coffee = Facts(snap).return_eligibility("o2", "p-coffee")
    assert coffee.eligible and coffee.reason.endswith("only if unopened.")
    phone = Facts(snap).return_eligibility("o1", "p-phone")
    assert phone.eligible and "unopened" not in phone.reason


def test_already_returned_not_delivered_cancelled_and_non_returnable(facts: Facts) -> None:
    r = facts.return_eligibility("o2", "p-headphones")
    assert not r.eligible and r.code == "already_returned" and "2026-10-25" in r.reason
    nd = facts.return_eligibility("o4", "p-grinder")
    assert not nd.eligible and nd.code == "not_delivered" and nd.deadline is None
    c = facts.return_eligibility("o6", "p-headphones")
    assert not c.eligible and c.code == "cancelled"
    s = facts.return_eligibility("o8", "p-soft")
    assert not s.eligible and s.code == "non_returnable" and s.policy_id == "pol-software"


def test_eligibility_unknown_ids(facts: Facts) -> None:
    with pytest.raises(NotFound):
        facts.return_eligibility("nope", "p-phone")
    with pytest.raises(NotFound):
        facts.return_eligibility("o1", "nope")
    with pytest.raises(NotFound, match="not part of order"):
        facts.return_eligibility("o1", "p-coffee")


def test_warranties_active_expired_and_none(facts: Facts) -> None:
    (w1,) = facts.warranties("c1")
    assert w1.active and w1.product_title == "Phone X" and w1.claim_status == ""
    assert w1.days_left == (w1.expires_at - AS_OF).days == 700
    (w2,) = facts.warranties("c2")
    assert not w2.active and w2.days_left == 0 and w2.claim_status == "rejected"
    assert w2.kind == "extended"
    assert facts.warranties("c4") == []
    with pytest.raises(NotFound):
        facts.warranties("ghost")


def test_open_refunds_customer_and_product(facts: Facts) -> None:
    (r,) = facts.open_refunds("c1")
    assert (r.order_id, r.product_id, r.refund_status, r.refund_amount) == (
        "o2", "p-headphones", "requested", 50.0)
    assert facts.open_refunds("c2") == []
    c = facts.customer("c1")
    assert (c.segment, c.order_count, c.open_refund_count) == ("standard", 4, 1)
    p = facts.product("p-coffee")
    assert p.replenish_days == 28 and p.in_stock
    with pytest.raises(NotFound):
        facts.customer("ghost")
    with pytest.raises(NotFound):
        facts.product("ghost")


def test_policy_selection_prefers_most_specific_scope(facts: Facts) -> None:
    soft = facts.policy_for(facts._products["p-soft"])
    phone = facts.policy_for(facts._products["p-phone"])
    assert soft is not None and soft.policy_id == "pol-software"
    assert phone is not None and phone.policy_id == "pol-returns" and phone.version == "2"


def test_segment_only_terms_apply_to_that_segment_alone() -> None:
    import msgspec

    from server.knowledge.shop.schema import Policy
    from tests.unit.test_graph import tiny_shop

    shop = tiny_shop()
    b2b = Policy("pol-b2b", "Business terms", "Business orders: 10 days.", "*", "1",
                 {"b2b_return_window_days": 10})
    # The business-only policy comes first, as in the demo shop's list order.
    snap = msgspec.structs.replace(shop, policies=[b2b, *shop.policies])
    facts = Facts(snap)
    phone = facts._products["p-phone"]
    standard = facts.policy_for(phone, "standard")
    business = facts.policy_for(phone, "b2b")
    assert standard is not None and standard.policy_id == "pol-returns"
    assert business is not None and business.policy_id == "pol-b2b"
