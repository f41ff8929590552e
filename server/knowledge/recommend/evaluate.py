"""`aftercare eval recommend`: next-order quality of the served (tuned) recommender vs
strong baselines, under two protocols, with 95% bootstrap intervals.

Split: every customer with two or more orders that were not cancelled has the last one
(by time) held out; everything below sees only the remaining orders (and the returns
and warranties not of held-out orders). Each method ranks 10 products per customer at
the time of the held-out order, under the protocol's mask (`metrics`):
`cross-sell` (new products only) and `next-basket` (repeats allowed). The recommender
is tuned exactly as serving tunes it (`tuning.tune` on the training orders, whose own
last orders are the validation split); baseline hyper-parameters are picked on that
same validation split, per protocol, never on the test orders. `graph_defaults` is the
untuned default mix. The `*_side` baselines get the catalogue side information the
graph recommender reads (categories, brands, complements): on the demo shop, whose
later purchases are generated from those complements and cadences, that comparison is
the fair one. `--validation` scores the second-to-last orders instead.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from server.errors import DataError
from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend import baselines
from server.knowledge.recommend.metrics import (
    PROTOCOLS,
    K,
    per_customer,
    protocol_mask,
    relevant_row,
    summarize,
)
from server.knowledge.recommend.purchases import PurchaseHistory
from server.knowledge.recommend.recommender import Recommender, RecommendWeights
from server.knowledge.recommend.split import HeldOut, hold_out_last_orders
from server.knowledge.recommend.tuning import GRID, blend_rows, collect, tune
from server.knowledge.shop.schema import Snapshot

BoolArray = npt.NDArray[np.bool_]
Targets = dict[str, tuple[BoolArray, BoolArray]]  # protocol -> (mask, relevant)


def _targets(h: PurchaseHistory, held: list[HeldOut]) -> Targets:
    out: Targets = {}
    for protocol in PROTOCOLS:
        rows = [protocol_mask(h, h.cindex[x.customer_id], protocol) for x in held]
        mask = np.stack(rows) if rows else np.zeros((0, h.n_items), dtype=np.bool_)
        rel = np.stack([relevant_row(h, x.products, m) for x, m in zip(held, mask, strict=True)]
                       ) if rows else mask.copy()
        out[protocol] = mask, rel
    return out


def _known(h: PurchaseHistory, held: list[HeldOut]) -> list[HeldOut]:
    return [x for x in held if x.customer_id in h.cindex
            and any(p in h.pindex for p in x.products)]


def _ndcg(scores: npt.NDArray[np.float64], mask: BoolArray, rel: BoolArray) -> float:
    keep = rel.any(axis=1)
    if not keep.any():
        return 0.0
    return float(per_customer(scores[keep], mask[keep], rel[keep])["ndcg_at_10"].mean())


def fit_baselines(train: Snapshot, as_of: datetime) -> dict[str, dict[str, str]]:
    """Per protocol, each baseline's hyper-parameters with the best validation NDCG@10
    (validation = the training orders' own last orders)."""
    inner, held = hold_out_last_orders(train)
    h = PurchaseHistory(inner, as_of)
    held = _known(h, held)
    targets = _targets(h, held)
    customers = np.array([h.cindex[x.customer_id] for x in held], dtype=np.int64)
    chosen: dict[str, dict[str, str]] = {p: {} for p in PROTOCOLS}
    for name, grid in baselines.grids(h, inner.products).items():
        scored = []
        for params, make in grid:
            scores = make()(customers) if customers.size else np.zeros((0, h.n_items))
            scored.append((params, {p: _ndcg(scores, *targets[p]) for p in PROTOCOLS}))
        for p in PROTOCOLS:
            chosen[p][name] = max(scored, key=lambda t: t[1][p])[0]
    return chosen


def run(data_dir: Path | str, validation: bool = False, limit: int | None = None,
        boot: int = 1000) -> dict[str, Any]:
    """Ingest the shop directory and `evaluate` it."""
    from server.knowledge.shop.ingest import ingest_dir

    path = Path(data_dir)
    if not path.is_dir():
        raise DataError(f"shop directory {path} does not exist")
    return evaluate(ingest_dir(path).snapshot, validation, limit, boot)


def evaluate(snapshot: Snapshot, validation: bool = False, limit: int | None = None,
             boot: int = 1000) -> dict[str, Any]:
    """The figures of the module docstring for one snapshot (JSON-ready)."""
    train, held = hold_out_last_orders(snapshot)
    if validation:
        train, held = hold_out_last_orders(train)
    if limit is not None:
        held = held[:limit]
    if not held:
        raise DataError("no customer has two or more orders to hold one out")
    tuning = tune(train)
    graph = KnowledgeGraph.build(train)
    rec = Recommender(graph, tuning.weights)
    h = rec.purchases
    held = _known(h, held)
    sig = collect(rec, held)
    latencies = []
    for x in held[:300]:
        start = time.perf_counter()
        rec.recommend(x.customer_id, (), K, now=x.at)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    params = fit_baselines(train, graph.as_of)
    grids = baselines.grids(h, train.products)
    targets = _targets(h, held)
    methods: dict[str, dict[str, Any]] = {p: {} for p in PROTOCOLS}
    for p in PROTOCOLS:
        mask, rel = targets[p]
        keep = rel.any(axis=1)
        ranked = {"recommender": blend_rows(rec, sig, tuning.weights),
                  "graph_defaults": blend_rows(rec, sig, msgspec.structs.replace(
                      tuning.weights, **_defaults()))}
        for name, grid in grids.items():
            make = dict(grid)[params[p][name]]
            ranked[name] = make()(sig.customers)
        for name, scores in ranked.items():
            fig = summarize(per_customer(scores[keep], mask[keep], rel[keep]), boot)
            extra = {"params": params[p][name]} if params[p].get(name) else {}
            methods[p][name] = {**fig, **extra}
    baseline_s = time.perf_counter() - start
    lat = np.array(latencies) * 1000.0
    return {
        "protocols": methods,
        "best_baseline": {p: max((n for n in methods[p] if n in grids),
                                 key=lambda n: methods[p][n]["ndcg_at_10"]) for p in PROTOCOLS},
        "best_simple_baseline": {p: max(baselines.SIMPLE,
                                        key=lambda n: methods[p][n]["ndcg_at_10"])
                                 for p in PROTOCOLS},
        "side_information_baselines": list(baselines.SIDE_INFO),
        "customers": {p: int(targets[p][1].any(axis=1).sum()) for p in PROTOCOLS},
        "split": "validation (second-to-last order)" if validation else "last order",
        "tuning": msgspec.to_builtins(tuning),
        "graph_build_s": round(graph.build_seconds, 3),
        "baselines_s": round(baseline_s, 3),
        "recommend_ms": {"p50": round(float(np.percentile(lat, 50)), 3),
                         "p95": round(float(np.percentile(lat, 95)), 3)} if lat.size else {},
    }


def _defaults() -> dict[str, float]:
    """The signal weights of the untuned default mix."""
    d = RecommendWeights()
    return {k: getattr(d, k) for k in GRID}
