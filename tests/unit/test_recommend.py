"""Recommender on the tiny shop: exclusions, reasons, query products, errors."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from server.errors import InvalidInput, NotFound
from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend.recommender import Recommender
from server.knowledge.shop.schema import Return, Snapshot
from tests.unit.test_graph import AS_OF, _t, tiny_shop


def _recommender(snap: Snapshot | None = None) -> Recommender:
    return Recommender(KnowledgeGraph.build(snap or tiny_shop()))


def test_excludes_owned_returned_and_out_of_stock_but_keeps_due_consumables() -> None:
    recs = _recommender().recommend("c1", (), top_k=9)
    ids = [r.product_id for r in recs]
    # Owned non-consumables (phone, case, grinder), returned headphones, out-of-stock cable.
    assert not {"p-phone", "p-case", "p-grinder", "p-headphones", "p-cable"} & set(ids)
    assert ids[0] == "p-coffee"  # bought 28 days ago at a 28-day personal cadence
    assert recs[0].reason == ("you bought Coffee Beans 4 weeks ago; usually re-bought "
                              "every 4 weeks")
    by_id = {r.product_id: r for r in recs}
    assert by_id["p-charger"].reason == "goes with your Phone X"
    assert by_id["p-filter"].reason == "often bought with Coffee Beans"
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)


def test_out_of_stock_and_returned_masks_are_what_hides_them() -> None:
    snap = tiny_shop()
    snap.products = [msgspec.structs.replace(p, in_stock=True) if p.product_id == "p-cable"
                     else p for p in snap.products]
    snap.returns = [*snap.returns, Return("o2", "p-coffee", _t(10, 25), "stale", "refunded")]
    recs = _recommender(snap).recommend("c1", (), top_k=9)
    ids = [r.product_id for r in recs]
    assert "p-cable" in ids and "p-coffee" not in ids
    assert {r.product_id: r.reason for r in recs}["p-cable"] == "goes with your Phone X"


def test_consumable_not_yet_due_ranks_lower() -> None:
    r = _recommender()
    due = r.recommend("c1", (), top_k=9)
    early = r.recommend("c1", (), top_k=9, now=AS_OF - timedelta(days=21))
    assert due[0].product_id == "p-coffee"
    coffee = [x for x in early if x.product_id == "p-coffee"]
    assert not coffee or coffee[0].score < due[0].score
    assert early[0].product_id != "p-coffee"


def test_query_products_without_customer() -> None:
    recs = _recommender().recommend(None, ["p-phone"], top_k=3)
    assert [r.product_id for r in recs][:2] == ["p-charger", "p-case"]
    assert recs[0].reason == "goes with Phone X"  # not "your": the caller doesn't own it
    assert "p-phone" not in {r.product_id for r in recs}
    assert len(recs) == 3


def test_customer_without_history_gets_popular_in_stock_products() -> None:
    recs = _recommender().recommend("c3", (), top_k=2)
    assert [r.product_id for r in recs] == ["p-phone", "p-coffee"]
    assert recs[0].reason == "popular in Electronics/Phones"


def test_unknown_ids_and_bad_top_k() -> None:
    r = _recommender()
    with pytest.raises(NotFound):
        r.recommend("ghost", (), top_k=3)
    with pytest.raises(NotFound):
        r.recommend("c1", ["p-phone", "nope"], top_k=3)
    with pytest.raises(InvalidInput):
        r.recommend("c1", (), top_k=0)
