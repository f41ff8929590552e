"""The per-shop tuner: never below the simple baselines on its validation split, leans
on popularity where the graph has nothing to find (a Zipf shop) and on the graph where
it has (the demo shop), and its batched blend ranks exactly like `recommend`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kernels.topk import top_k_rows
from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend.evaluate import evaluate
from server.knowledge.recommend.recommender import Recommender
from server.knowledge.recommend.split import hold_out_last_orders
from server.knowledge.recommend.tuning import (
    blend_rows,
    collect,
    served_targets,
    tune,
)
from server.knowledge.shop.schema import Snapshot
from tests.popularity_shop import popularity_shop


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    from server.demo.generate import generate
    from server.knowledge.shop.ingest import ingest_dir

    path: Path = tmp_path_factory.mktemp("demo") / "xs"
    generate(path, "XS", seed=7)
    return ingest_dir(path).snapshot


def _simple_best(validation: dict[str, dict[str, float | str]]) -> float:
    return max(float(validation[n]["ndcg_at_10"])
               for n in ("popularity", "recent_popularity", "top_frequency"))


def test_popularity_shop_gets_a_popularity_mix() -> None:
    t = tune(popularity_shop())
    assert t.customers >= 200
    tuned = float(t.validation["tuned"]["ndcg_at_10"])
    assert tuned >= _simple_best(t.validation)
    assert t.leans_on == "popularity/recency"  # no graph signal survives the 1-se rule
    assert t.weights.walk == t.weights.complements == t.weights.copurchase == 0.0
    assert "not above one standard error" in t.note or tuned > _simple_best(t.validation)


def test_popularity_shop_eval_matches_the_best_simple_baseline() -> None:
    d = evaluate(popularity_shop(), boot=100)
    for protocol, methods in d["protocols"].items():
        best = max(methods[n]["ndcg_at_10"] for n in ("popularity", "recent_popularity"))
        assert methods["recommender"]["ndcg_at_10"] >= best - 1e-9, protocol


def test_demo_shop_leans_on_the_graph_and_beats_baselines(demo_shop: Snapshot) -> None:
    t = tune(demo_shop)
    assert t.leans_on == "graph"
    assert float(t.validation["tuned"]["ndcg_at_10"]) > _simple_best(t.validation)
    d = evaluate(demo_shop, boot=100)
    served = d["protocols"]["next-basket"]
    assert served["recommender"]["ndcg_at_10"] > max(
        served[n]["ndcg_at_10"] for n in ("popularity", "recent_popularity", "top_frequency",
                                          "item_knn", "ease", "rp3beta"))
    assert {"item_knn_side", "ease_side"} <= set(served)
    assert set(served["recommender"]) >= {"hit_rate_at_10", "ndcg_at_10", "recall_at_10",
                                          "hit_rate_at_10_ci", "ndcg_at_10_ci", "recall_at_10_ci"}


def test_blend_rows_ranks_like_recommend(demo_shop: Snapshot) -> None:
    train, held = hold_out_last_orders(demo_shop)
    rec = Recommender(KnowledgeGraph.build(train))
    held = held[:25]
    mask, _ = served_targets(rec, held)
    ranked = top_k_rows(blend_rows(rec, collect(rec, held), rec.weights), 10, mask, 0.0)
    for x, row in zip(held, ranked, strict=True):
        got = [rec.product_ids[i] for i in row.tolist() if i >= 0]
        assert got == [r.product_id for r in rec.recommend(x.customer_id, (), 10, now=x.at)]
    assert np.any(ranked >= 0)


def test_too_few_customers_keeps_the_defaults() -> None:
    t = tune(popularity_shop(customers=12))
    assert t.leans_on == "defaults" and t.note.startswith("not tuned")
