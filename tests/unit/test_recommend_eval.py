"""The eval's held-out split and metrics (the full run needs a demo shop: see the CLI)."""

from __future__ import annotations

import math

import pytest

from server.knowledge.recommend.evaluate import _ndcg, hold_out_last_orders
from tests.unit.test_graph import tiny_shop


def test_hold_out_last_orders_removes_only_the_last_non_cancelled_order() -> None:
    snap = tiny_shop()
    train, held = hold_out_last_orders(snap)
    # c1: o4 is last; c2: o6 is cancelled so o5 is its only order -> not held out;
    # c4: o7 and o8 share a timestamp -> the higher id (o8) is last.
    assert [(h.customer_id, sorted(h.products)) for h in held] == [
        ("c1", ["p-grinder"]), ("c4", ["p-soft"])]
    assert {o.order_id for o in train.orders} == {o.order_id for o in snap.orders} - {"o4", "o8"}
    assert all(it.order_id not in {"o4", "o8"} for it in train.order_items)
    assert len(train.returns) == 1 and len(train.warranties) == 2
    assert train.snapshot_id == "snap-tiny-train"


def test_ndcg_binary_gains() -> None:
    assert _ndcg(["a", "b", "c"], frozenset({"a"})) == 1.0
    assert _ndcg(["x", "a"], frozenset({"a"})) == pytest.approx(1 / math.log2(3))
    both = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert _ndcg(["x", "a", "b"], frozenset({"a", "b"})) == pytest.approx(both)
    assert _ndcg(["x"] * 10, frozenset({"a"})) == 0.0
