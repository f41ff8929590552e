"""Retention kinds and suppression on a hand-built shop, one customer per situation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from server.governance.policy import RETENTION_KINDS, RetentionPolicy, load_policy
from server.knowledge.shop.schema import (
    Customer,
    Order,
    OrderItem,
    Product,
    Return,
    Snapshot,
    Warranty,
)
from server.records.retention import OpenIssues
from server.retention.history import RetentionIndex
from server.retention.kinds import ActionFactory, Window, actions_for
from server.retention.suppression import SuppressionCounts, apply
from server.retention.types import RetentionAction

AS_OF = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
ALL = frozenset(RETENTION_KINDS)


def _t(days: float) -> datetime:
    return AS_OF + timedelta(days=days)


def _product(pid: str, replenish: int = 0, warranty: int = 0) -> Product:
    return Product(pid, pid.title(), "Brand", "Home/Kitchen", 10.0, "EUR", True, warranty, "",
                   replenish_days=replenish)


class _Shop:
    def __init__(self) -> None:
        self.customers: list[Customer] = []
        self.orders: list[Order] = []
        self.items: list[OrderItem] = []
        self.returns: list[Return] = []
        self.warranties: list[Warranty] = []

    def customer(self, cid: str, opt_in: bool = True) -> str:
        self.customers.append(Customer(cid, cid, f"{cid}@x.test", "", "standard", _t(-900),
                                       marketing_opt_in=opt_in))
        return cid

    def order(self, cid: str, day: float, *items: tuple[str, int], delivered: bool = True
              ) -> str:
        oid = f"O{len(self.orders) + 1:05d}"
        self.orders.append(Order(oid, cid, _t(day), "delivered" if delivered else "processing",
                                 _t(day + 1) if delivered else None,
                                 _t(day + 2) if delivered else None, 10.0, "EUR"))
        self.items += [OrderItem(oid, pid, qty, 10.0) for pid, qty in items]
        return oid

    def snapshot(self) -> Snapshot:
        products = [_product("p-coffee", replenish=30), _product("p-phone", warranty=12),
                    _product("p-case"), _product("p-mug")]
        return Snapshot("snap-test", self.customers, products, self.orders, self.items,
                        self.returns, self.warranties, [], [], as_of=AS_OF)


def _index(shop: _Shop) -> RetentionIndex:
    return RetentionIndex(shop.snapshot())


def _actions(index: RetentionIndex, cid: str, policy: RetentionPolicy | None = None,
             end_days: float = 0.0, recommend=None, now_days: float = 0.0
             ) -> list[RetentionAction]:
    policy = policy or load_policy().retention
    factory = ActionFactory(policy, lambda pid: index.products[pid].title)
    window = Window(_t(now_days), _t(-3650), _t(end_days or now_days))
    return actions_for(index.customer(cid), window, factory, ALL, recommend)


def test_replenish_follows_the_customers_own_cadence() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    for day in (-100, -80, -60, -40):  # every 20 days
        shop.order(c, day, ("p-coffee", 1))
    for cid, days in (("c2", (-120, -80, -40)), ("c3", (-130, -90))):  # every 40 days
        shop.customer(cid)
        for day in days:
            shop.order(cid, day, ("p-coffee", 1))
    acts = [a for a in _actions(_index(shop), c) if a.kind == "replenish"]
    assert len(acts) == 1
    a = acts[0]
    # The product's cadence is the median over all buyers' intervals (20, 20, 20, 40, 40,
    # 40): 30. Three own intervals at 2/3 of it, shrunk with weight 1: pace (2/3)^(3/4).
    pace = (2 / 3) ** 0.75
    assert abs((a.due_at - _t(-40 + 30 * pace)).total_seconds()) < 1
    assert a.product_id == "p-coffee" and a.channel == "push" and a.order_id == "O00004"
    assert f"at your own pace, x{pace:.2f}" in a.reason and "22 days" in a.message
    assert 0.0 < a.score <= 1.0


def test_replenish_falls_back_to_the_products_cadence_and_scales_with_quantity() -> None:
    shop = _Shop()
    single = shop.customer("c-one")
    shop.order(single, -35, ("p-coffee", 1))
    double = shop.customer("c-two")
    shop.order(double, -35, ("p-coffee", 2))  # two packs last twice as long: not due yet
    index = _index(shop)
    one = [a for a in _actions(index, single) if a.kind == "replenish"]
    assert len(one) == 1 and one[0].due_at == _t(-35 + 30)
    assert "the product's usual cadence" in one[0].reason
    assert not [a for a in _actions(index, double) if a.kind == "replenish"]
    later = [a for a in _actions(index, double, end_days=30) if a.kind == "replenish"]
    assert len(later) == 1 and later[0].due_at == _t(-35 + 60)


def test_follow_up_after_delivery_and_stale_ones_lapse() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    recent = shop.order(c, -6, ("p-mug", 1))  # delivered on day -4: follow up on day -1
    shop.order(c, -60, ("p-mug", 1))  # its follow-up lapsed long ago
    ups = [a for a in _actions(_index(shop), c) if a.kind == "follow_up"]
    assert [a.order_id for a in ups] == [recent]
    assert ups[0].due_at == _t(-4 + 3) and ups[0].channel == "email"
    assert recent in ups[0].message


def test_warranty_expiry_before_the_end_unless_a_claim_is_open() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    oid = shop.order(c, -340, ("p-phone", 1))
    shop.warranties.append(Warranty("W1", c, oid, "p-phone", _t(-338), _t(20)))
    acts = [a for a in _actions(_index(shop), c) if a.kind == "warranty_expiry"]
    assert len(acts) == 1 and acts[0].due_at == _t(20 - 30)
    assert acts[0].product_id == "p-phone" and "ends on 2026-12-05" in acts[0].reason
    shop.warranties[0] = msgspec.structs.replace(shop.warranties[0], claim_status="open")
    assert not [a for a in _actions(_index(shop), c) if a.kind == "warranty_expiry"]


def test_win_back_by_recency_against_the_customers_frequency() -> None:
    shop = _Shop()
    regular = shop.customer("c-regular")
    for day in (-200, -170, -140):  # every 30 days, then silence
        shop.order(regular, day, ("p-mug", 1))
    busy = shop.customer("c-busy")
    for day in (-90, -60, -30):  # the same rhythm, still active
        shop.order(busy, day, ("p-mug", 1))
    index = _index(shop)
    wb = [a for a in _actions(index, regular) if a.kind == "win_back"]
    assert len(wb) == 1 and wb[0].due_at == _t(-140 + 90)  # 3 x the 30-day gap
    assert "usually orders every 30 days" in wb[0].reason
    assert not [a for a in _actions(index, busy) if a.kind == "win_back"]


def test_cross_sell_skips_re_buys_and_keeps_the_recommenders_reason() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    shop.order(c, -14, ("p-phone", 1), ("p-coffee", 1))  # delivered -12: due on day -2
    calls = []

    def recommend(cid: str, now: datetime) -> list[tuple[str, str, float, str]]:
        calls.append((cid, now))
        return [("p-coffee", "Coffee", 3.0, "re-buy"), ("p-case", "Case", 1.0,
                                                          "goes with your Phone")]

    acts = [a for a in _actions(_index(shop), c, recommend=recommend) if a.kind == "cross_sell"]
    assert calls == [(c, AS_OF)]
    assert len(acts) == 1 and acts[0].product_id == "p-case"
    assert acts[0].reason.startswith("goes with your Phone") and "Case" in acts[0].message


def test_an_earlier_now_sees_only_what_had_happened_by_then() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    early = shop.order(c, -30, ("p-mug", 1))  # delivered on day -28
    shop.order(c, -6, ("p-coffee", 1))  # delivered on day -4: after "now" below
    seen = _actions(_index(shop), c, now_days=-20, end_days=-20)
    assert [a.order_id for a in seen if a.kind == "follow_up"] == [early]
    assert not [a for a in seen if a.kind == "replenish"]  # not bought yet as of day -20
    assert all(a.due_at < _t(-20) for a in seen)


def test_actions_are_sorted_best_first() -> None:
    shop = _Shop()
    c = shop.customer("c1")
    for day in (-70, -40):
        shop.order(c, day, ("p-coffee", 1))
    shop.order(c, -6, ("p-mug", 1))
    acts = _actions(_index(shop), c)
    assert len(acts) >= 2
    assert [a.score for a in acts] == sorted((a.score for a in acts), reverse=True)


# --- suppression ------------------------------------------------------------------------

def _busy_customer(opt_in: bool = True) -> tuple[_Shop, str]:
    shop = _Shop()
    c = shop.customer("c1", opt_in=opt_in)
    shop.order(c, -70, ("p-coffee", 1))
    shop.order(c, -40, ("p-coffee", 1))
    shop.order(c, -6, ("p-mug", 1))  # follow-up due
    return shop, c


NO_ISSUES = OpenIssues()


def _apply(shop: _Shop, c: str, issues: OpenIssues = NO_ISSUES,
           issued: dict | None = None, policy: RetentionPolicy | None = None
           ) -> tuple[list[RetentionAction], SuppressionCounts]:
    policy = policy or load_policy().retention
    index = _index(shop)
    counts = SuppressionCounts()
    acts = apply(_actions(index, c, policy), index.customer(c), issues, policy,
                 issued or {}, counts)
    return acts, counts


@pytest.mark.parametrize("issues, code", [
    (OpenIssues(complaints=frozenset({"c1"})), "open_complaint"),
    (OpenIssues(handoffs=frozenset({"c1"})), "pending_handoff"),
    (OpenIssues(approvals=frozenset({"c1"})), "pending_approval"),
])
def test_open_issues_hold_back_every_action(issues: OpenIssues, code: str) -> None:
    shop, c = _busy_customer()
    clean, _ = _apply(shop, c)
    acts, counts = _apply(shop, c, issues)
    assert len(acts) == len(clean) >= 2
    assert all(a.channel == "" and a.suppressed == (code,) for a in acts)
    assert all(a.reason.startswith("suppressed (") for a in acts)
    assert counts.by_reason[code] == len(acts) and counts.issued == 0
    other = OpenIssues(complaints=frozenset({"someone-else"}))
    assert all(a.channel for a in _apply(shop, c, other)[0])


def test_open_refund_holds_back_and_names_the_order() -> None:
    shop, c = _busy_customer()
    shop.returns.append(Return("O00003", "p-mug", _t(-3), "broken", "requested"))
    acts, counts = _apply(shop, c)
    assert acts and all(a.suppressed == ("open_refund",) for a in acts)
    assert "refund is open for order O00003" in acts[0].reason
    assert counts.as_dict()["open_refund"] == len(acts)
    shop.returns[0] = msgspec.structs.replace(shop.returns[0], refund_status="refunded")
    assert all(a.channel for a in _apply(shop, c)[0])


def test_marketing_opt_out_holds_back_marketing_kinds_only() -> None:
    shop, c = _busy_customer(opt_in=False)
    acts, counts = _apply(shop, c)
    by_kind = {a.kind: a for a in acts}
    assert by_kind["follow_up"].channel == "email"  # a service message, not marketing
    assert by_kind["replenish"].suppressed == ("marketing_opt_out",)
    assert "opted out of marketing" in by_kind["replenish"].reason
    assert counts.by_reason["marketing_opt_out"] == 1 and counts.issued == 1


def test_two_reasons_are_both_visible_and_counted() -> None:
    shop, c = _busy_customer(opt_in=False)
    acts, counts = _apply(shop, c, OpenIssues(handoffs=frozenset({c})))
    replenish = next(a for a in acts if a.kind == "replenish")
    assert replenish.suppressed == ("pending_handoff", "marketing_opt_out")
    assert counts.by_reason["pending_handoff"] == len(acts)


def test_frequency_cap_per_customer_and_channel() -> None:
    shop, c = _busy_customer()
    policy = msgspec.structs.replace(load_policy().retention, frequency_cap=1)
    acts, _ = _apply(shop, c, policy=policy)
    replenish = next(a for a in acts if a.kind == "replenish")
    assert replenish.channel == "push"
    # One other push action already went out in the window: the cap of 1 is reached.
    other = (c, "cross_sell", "p-case", "O00001", _t(-20).isoformat())
    capped, counts = _apply(shop, c, issued={"push": {other}}, policy=policy)
    by_kind = {a.kind: a for a in capped}
    assert by_kind["replenish"].suppressed == ("frequency_cap",)
    assert "1 push actions in the last 7 days (cap 1)" in by_kind["replenish"].reason
    assert by_kind["follow_up"].channel == "email"  # another channel, its own cap
    assert counts.by_reason["frequency_cap"] == 1
    # The same nudge issued again is not a new one: it is not capped.
    again, _ = _apply(shop, c, issued={"push": {replenish.key}}, policy=policy)
    assert next(a for a in again if a.kind == "replenish").channel == "push"
    # Suppressed actions come after the sendable ones.
    assert [bool(a.channel) for a in capped] == sorted((bool(a.channel) for a in capped),
                                                       reverse=True)
