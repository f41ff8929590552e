"""`aftercare eval recommend`: next-order quality of the graph recommender vs two baselines.

Protocol (the same for all three): for every customer with at least two orders that
were not cancelled, the last one (by time) is held out; the graph, the recommender and
both baselines see only the remaining orders (and the returns and warranties that do
not belong to held-out orders). Each method ranks 10 products for the customer at the
time of the held-out order, under the same exclusions (owned non-consumables, returned,
out of stock). A hit is any product of the held-out order in the 10; NDCG uses binary
gains. Baselines: popularity (distinct buyers) and item-kNN (cosine co-occurrence of
the customer's past items). `--validation` additionally holds out the second-to-last
order and scores that instead, so weights can be tuned without touching the test orders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from kernels.copurchase import copurchase_scores
from kernels.topk import top_k_excluding
from server.errors import DataError
from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend.recommender import Recommender, RecommendWeights
from server.knowledge.shop.schema import Order, Snapshot

K = 10


class HeldOut(msgspec.Struct, frozen=True):
    customer_id: str
    at: datetime
    products: frozenset[str]


def hold_out_last_orders(snapshot: Snapshot) -> tuple[Snapshot, list[HeldOut]]:
    """The snapshot without each eligible customer's last order, and what was removed."""
    items_by_order: dict[str, set[str]] = {}
    for it in snapshot.order_items:
        items_by_order.setdefault(it.order_id, set()).add(it.product_id)
    by_customer: dict[str, list[Order]] = {}
    for o in snapshot.orders:
        if o.status != "cancelled" and items_by_order.get(o.order_id):
            by_customer.setdefault(o.customer_id, []).append(o)
    held: list[HeldOut] = []
    removed: set[str] = set()
    for cid in sorted(by_customer):
        orders = by_customer[cid]
        if len(orders) < 2:
            continue
        last = max(orders, key=lambda o: (o.ordered_at, o.order_id))
        removed.add(last.order_id)
        held.append(HeldOut(cid, last.ordered_at, frozenset(items_by_order[last.order_id])))
    train = msgspec.structs.replace(
        snapshot,
        snapshot_id=f"{snapshot.snapshot_id}-train",
        orders=[o for o in snapshot.orders if o.order_id not in removed],
        order_items=[it for it in snapshot.order_items if it.order_id not in removed],
        returns=[r for r in snapshot.returns if r.order_id not in removed],
        warranties=[w for w in snapshot.warranties if w.order_id not in removed],
    )
    return train, held


def _ndcg(ranked: list[str], relevant: frozenset[str]) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, p in enumerate(ranked[:K]) if p in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(relevant), K)))
    return dcg / ideal if ideal else 0.0


class _Scores:
    def __init__(self) -> None:
        self.hits: list[float] = []
        self.ndcg: list[float] = []

    def add(self, ranked: list[str], relevant: frozenset[str]) -> None:
        self.hits.append(1.0 if relevant & set(ranked[:K]) else 0.0)
        self.ndcg.append(_ndcg(ranked, relevant))

    def summary(self) -> dict[str, float]:
        n = max(len(self.hits), 1)
        return {"hit_rate_at_10": round(sum(self.hits) / n, 4),
                "ndcg_at_10": round(sum(self.ndcg) / n, 4)}


Method = Callable[[str, datetime], list[str]]


def _baselines(rec: Recommender) -> dict[str, Method]:
    ids = rec.product_ids
    pop = rec.popularity
    views = rec.purchase_views()
    norm = np.sqrt(np.maximum(pop, 1.0))

    def popularity(cid: str, _now: datetime) -> list[str]:
        picked = top_k_excluding(pop, K, rec.excluded(cid), min_score=0.0)
        return [ids[i] for i in picked]

    def item_knn(cid: str, _now: datetime) -> list[str]:
        seeds = rec.history(cid)
        scores: npt.NDArray[np.float64] = np.zeros(len(ids))
        if seeds.size:
            co, _ = copurchase_scores(seeds, 1.0 / norm[seeds], *views, now=0.0,
                                      half_life_days=0.0, exclude_customer=rec.customer_index(cid))
            scores = co / norm
        picked = top_k_excluding(scores, K, rec.excluded(cid), min_score=0.0)
        return [ids[i] for i in picked]

    return {"popularity": popularity, "item_knn": item_knn}


def run(data_dir: Path | str, weights: RecommendWeights | None = None,
        validation: bool = False, limit: int | None = None) -> dict[str, Any]:
    from server.knowledge.shop.ingest import ingest_dir

    path = Path(data_dir)
    if not path.is_dir():
        raise DataError(f"shop directory {path} does not exist")
    snapshot = ingest_dir(path).snapshot
    train, held = hold_out_last_orders(snapshot)
    if validation:
        train, held = hold_out_last_orders(train)
    if limit is not None:
        held = held[:limit]
    if not held:
        raise DataError("no customer has two or more orders to hold one out")
    graph = KnowledgeGraph.build(train)
    rec = Recommender(graph, weights)
    known = set(rec.product_ids)
    methods: dict[str, Method] = {
        "graph": lambda cid, now: [r.product_id for r in rec.recommend(cid, (), K, now=now)],
        **_baselines(rec),
    }
    scores = {name: _Scores() for name in methods}
    latencies: list[float] = []
    for h in held:
        relevant = h.products & known
        if not relevant:
            continue
        for name, method in methods.items():
            start = time.perf_counter()
            ranked = method(h.customer_id, h.at)
            if name == "graph":
                latencies.append(time.perf_counter() - start)
            scores[name].add(ranked, relevant)
    lat = np.array(latencies) * 1000.0
    return {
        **{name: s.summary() for name, s in scores.items()},
        "customers": len(latencies),
        "protocol": "validation (second-to-last order)" if validation else "last order",
        "graph_build_s": round(graph.build_seconds, 3),
        "recommend_ms": {"mean": round(float(lat.mean()), 3),
                         "p50": round(float(np.percentile(lat, 50)), 3),
                         "p95": round(float(np.percentile(lat, 95)), 3)},
    }

