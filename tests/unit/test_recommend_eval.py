"""The eval's held-out split, protocols and metrics (the full run needs a demo shop:
see the CLI; `tests/unit/test_recommend_tuning.py` runs it on generated shops)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.knowledge.recommend.metrics import (
    per_customer,
    protocol_mask,
    relevant_row,
    summarize,
)
from server.knowledge.recommend.purchases import PurchaseHistory
from server.knowledge.recommend.split import hold_out_last_orders
from tests.unit.test_graph import AS_OF, tiny_shop


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


def test_protocol_masks() -> None:
    h = PurchaseHistory(tiny_shop(), AS_OF)
    c1 = h.cindex["c1"]
    names = h.product_ids

    def masked(protocol: str) -> set[str]:
        return {names[i] for i in np.flatnonzero(protocol_mask(h, c1, protocol))}

    # c1 owns phone, case, coffee (consumable), headphones (returned), grinder; the
    # cable is out of stock.
    assert masked("next-basket") == {"p-headphones", "p-cable"}
    assert masked("cross-sell") == {"p-phone", "p-case", "p-coffee", "p-headphones",
                                    "p-grinder", "p-cable"}
    assert masked("served") == masked("cross-sell") - {"p-coffee"}
    rel = relevant_row(h, frozenset({"p-coffee", "p-filter", "gone"}),
                       protocol_mask(h, c1, "cross-sell"))
    assert {names[i] for i in np.flatnonzero(rel)} == {"p-filter"}
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_mask(h, c1, "nope")


def test_metrics_by_hand() -> None:
    scores = np.array([[0.9, 0.8, 0.7, 0.0, 0.5],
                       [0.1, 0.2, 0.3, 0.4, 0.5],
                       [0.0, 0.0, 0.0, 0.0, 0.0]])
    mask = np.zeros_like(scores, dtype=np.bool_)
    mask[1, 4] = True  # row 1's best is masked
    rel = np.array([[False, True, False, True, False],
                    [False, False, False, True, True],
                    [True, False, False, False, False]])
    m = per_customer(scores, mask, rel, k=2)
    # Row 0 ranks [0, 1]: item 1 at rank 2 of 2 relevant; item 3 (score 0) never shown.
    assert m["hit_rate_at_10"].tolist() == [1.0, 1.0, 0.0]
    assert m["recall_at_10"].tolist() == [0.5, 0.5, 0.0]
    ideal = 1 + 1 / math.log2(3)
    assert m["ndcg_at_10"][0] == pytest.approx((1 / math.log2(3)) / ideal)
    assert m["ndcg_at_10"][1] == pytest.approx(1 / ideal)  # item 3 at rank 1, 4 masked
    assert m["ndcg_at_10"][2] == 0.0  # nothing scored: an empty list
    s = summarize({"x": np.array([0.0, 1.0] * 50), "y": np.ones(100)}, boot=500)
    lo, hi = s["x_ci"]  # type: ignore[misc]
    assert lo < s["x"] == 0.5 < hi and hi - lo < 0.3
    assert s["y_ci"] == [1.0, 1.0]
