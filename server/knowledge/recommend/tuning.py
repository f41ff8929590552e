"""Per-shop tuning of the recommender's mix on a temporal validation split of the
shop's own history, never below the simple baselines there.

Split: each customer's last order is held out (`split.hold_out_last_orders`); graph,
history and signals are built from the rest. Each validation customer's signals are
computed once (`Recommender.signals` at the held-out order's time), so trying a mix
costs one weighted sum and one top-10 per customer. Objective: mean NDCG@10 under the
`served` protocol (what Recommend may show).

Search: coordinate ascent over `GRID` (one pass per start, a second from the best),
from the defaults and from the mixes that *are* the simple baselines (popularity,
recency-weighted popularity at each baseline half-life, personal top-frequency), so
the best mix found scores at least as well as the best of them on the split. It is
served only if it beats the best baseline mix by more than one standard error of the
per-customer NDCG differences; otherwise that baseline mix is (a sparse shop leans
on popularity). The baselines themselves (`baselines.SIMPLE`) are scored on the same
split and recorded beside the choice.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from server.knowledge.graph.graph import KnowledgeGraph
from server.knowledge.recommend import baselines
from server.knowledge.recommend.metrics import per_customer, protocol_mask, relevant_row
from server.knowledge.recommend.recommender import Recommender, RecommendWeights
from server.knowledge.recommend.split import HeldOut, hold_out_last_orders
from server.knowledge.shop.schema import Snapshot

FloatArray = npt.NDArray[np.float64]
GRAPH_SIGNALS = ("walk", "complements", "copurchase")
GRID: dict[str, tuple[float, ...]] = {
    "walk": (0.0, 0.1, 0.3, 1.0),
    "walk_popularity_penalty": (0.0, 0.25, 0.5),
    "complements": (0.0, 0.3, 0.6, 1.2),
    "copurchase": (0.0, 0.25, 0.5, 1.0),
    "replenish": (0.0, 1.0, 3.0),
    "repeat": (0.0, 0.2, 0.5, 1.0),
    "popularity": (0.01, 0.05, 0.2, 1.0),
    "popularity_half_life_days": (0.0, 14.0, 30.0, 90.0, 365.0),
}
MIN_CUSTOMERS = 20


class SignalRows(NamedTuple):
    """Signals of many requests as (customers x items) rows, plus their history index."""

    customers: npt.NDArray[np.int64]
    walk: FloatArray
    complements: FloatArray
    copurchase: FloatArray
    replenish: FloatArray
    repeat: FloatArray


class RecommenderTuning(msgspec.Struct, frozen=True):
    """What the tuner chose and why: validation NDCG@10 / hit-rate@10 of the choice,
    the defaults and each simple baseline on the same customers."""

    weights: RecommendWeights
    choice: str  # the signals the chosen mix uses, e.g. "walk+copurchase+popularity"
    leans_on: str  # "graph" or "popularity/recency" (or "defaults" when not tuned)
    validation: dict[str, dict[str, float | str]]
    customers: int
    candidates: int
    seconds: float
    note: str = ""


def collect(rec: Recommender, held: list[HeldOut]) -> SignalRows:
    """Each held-out customer's signals at the time of the held-out order."""
    h = rec.purchases
    rows = [rec.signals(x.customer_id, (), now=x.at) for x in held]
    n = h.n_items

    def stack(name: str) -> FloatArray:
        return np.stack([getattr(r, name) for r in rows]) if rows else np.zeros((0, n))

    return SignalRows(np.array([h.cindex[x.customer_id] for x in held], dtype=np.int64),
                      stack("walk"), stack("complements"), stack("copurchase"),
                      stack("replenish"), stack("repeat"))


def _row_scaled(x: FloatArray) -> FloatArray:
    top = x.max(axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1))
    return np.divide(x, top, out=np.zeros_like(x), where=top > 0)


class _Scaled:
    """Row-scaled walk (per popularity penalty), repeat and popularity (per half-life)
    of one `SignalRows`, computed once each."""

    def __init__(self, rec: Recommender, sig: SignalRows) -> None:
        self.rec, self.sig = rec, sig
        self._walk: dict[float, FloatArray] = {}
        self._pop: dict[float, FloatArray] = {}
        self.repeat = _row_scaled(sig.repeat)

    def walk(self, penalty: float) -> FloatArray:
        if penalty not in self._walk:
            w = self.sig.walk
            if penalty:
                w = w / np.maximum(self.rec.purchases.popularity, 1.0) ** penalty
            self._walk[penalty] = _row_scaled(w)
        return self._walk[penalty]

    def popularity(self, half_life: float) -> FloatArray:
        if half_life not in self._pop:
            pop = self.rec.purchases.recent_popularity(half_life)
            top = float(pop.max()) if pop.size else 0.0
            self._pop[half_life] = pop / top if top > 0 else np.zeros_like(pop)
        return self._pop[half_life]


def blend_rows(rec: Recommender, sig: SignalRows, w: RecommendWeights,
               scaled: _Scaled | None = None) -> FloatArray:
    """`Recommender.blend` summed, for many requests at once (same arithmetic)."""
    sc = scaled or _Scaled(rec, sig)
    out = w.popularity * np.broadcast_to(sc.popularity(w.popularity_half_life_days),
                                         sig.walk.shape)
    for weight, part in ((w.complements, sig.complements), (w.copurchase, sig.copurchase),
                         (w.replenish, sig.replenish)):
        if weight:
            out = out + weight * part
    if w.walk:
        out = out + w.walk * sc.walk(w.walk_popularity_penalty)
    if w.repeat:
        out = out + w.repeat * sc.repeat
    return np.ascontiguousarray(out)


def served_targets(rec: Recommender, held: list[HeldOut]
                   ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    h = rec.purchases
    mask = np.stack([protocol_mask(h, h.cindex[x.customer_id], "served") for x in held])
    rel = np.stack([relevant_row(h, x.products, m) for x, m in zip(held, mask, strict=True)])
    return mask, rel


def _baseline_starts(base: RecommendWeights) -> list[RecommendWeights]:
    off = {k: 0.0 for k in (*GRAPH_SIGNALS, "replenish", "repeat")}
    starts = [base, msgspec.structs.replace(base, **off, popularity=1.0,
                                            popularity_half_life_days=0.0)]
    starts += [msgspec.structs.replace(base, **off, popularity=1.0, popularity_half_life_days=d)
               for d in (14.0, 30.0, 90.0, 365.0)]
    starts.append(msgspec.structs.replace(base, **{**off, "repeat": 1.0}, popularity=0.01,
                                          popularity_half_life_days=0.0))
    return starts


def _describe(w: RecommendWeights) -> tuple[str, str]:
    used = [k for k in ("walk", "complements", "copurchase", "replenish", "repeat",
                        "popularity") if getattr(w, k) > 0]
    graph = any(getattr(w, k) > 0 for k in GRAPH_SIGNALS)
    return "+".join(used), "graph" if graph else "popularity/recency"


def tune(snapshot: Snapshot, base: RecommendWeights | None = None,
         max_customers: int = 400, seed: int = 0) -> RecommenderTuning:
    """Tune the mix on `snapshot`'s own history (see the module docstring)."""
    start = time.perf_counter()
    base = base or RecommendWeights()
    train, held = hold_out_last_orders(snapshot)
    if len(held) > max_customers:
        pick = np.random.default_rng(seed).choice(len(held), max_customers, replace=False)
        held = [held[i] for i in sorted(pick.tolist())]
    if len(held) < MIN_CUSTOMERS:
        label, _ = _describe(base)
        return RecommenderTuning(base, label, "defaults", {}, len(held), 0,
                                 round(time.perf_counter() - start, 3),
                                 f"not tuned: {len(held)} customers with 2+ orders "
                                 f"(< {MIN_CUSTOMERS})")
    rec = Recommender(KnowledgeGraph.build(train), base)
    known = set(rec.product_ids)
    held = [x for x in held if x.customer_id in rec.purchases.cindex and x.products & known]
    sig = collect(rec, held)
    mask, rel = served_targets(rec, held)
    keep = rel.any(axis=1)
    sig = SignalRows(sig.customers[keep], *(a[keep] for a in sig[1:]))
    mask, rel = mask[keep], rel[keep]
    seen: dict[tuple[float, ...], float] = {}
    scaled = _Scaled(rec, sig)

    def objective(w: RecommendWeights) -> float:
        key = tuple(float(getattr(w, k)) for k in GRID)
        if key not in seen:
            m = per_customer(blend_rows(rec, sig, w, scaled), mask, rel)
            seen[key] = float(m["ndcg_at_10"].mean()) if rel.shape[0] else 0.0
        return seen[key]

    starts = _baseline_starts(base)
    simple = max(starts[1:], key=objective)  # the best of the baseline mixes as they are
    def ascend(w: RecommendWeights) -> RecommendWeights:
        score = objective(w)
        for name, values in GRID.items():
            for v in values:
                cand = msgspec.structs.replace(w, **{name: v})
                s = objective(cand)
                if s > score + 1e-9:
                    w, score = cand, s
        return w

    # One pass from every start, a second from the best of them.
    best = max((ascend(w0) for w0 in starts), key=objective)
    best = ascend(best)
    # One-standard-error rule: a richer mix must beat the best baseline mix by more
    # than the noise of the per-customer differences, or the baseline mix is served.
    diff = (per_customer(blend_rows(rec, sig, best, scaled), mask, rel)["ndcg_at_10"]
            - per_customer(blend_rows(rec, sig, simple, scaled), mask, rel)["ndcg_at_10"])
    se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
    note = f"gain over the best baseline mix {diff.mean():+.4f} NDCG@10 (se {se:.4f})"
    if not diff.mean() > se:
        best = simple
        note += ": not above one standard error, so the baseline mix is served"
    figures: dict[str, dict[str, float | str]] = {"tuned": _figures(rec, sig, best, mask, rel),
               "defaults": _figures(rec, sig, base, mask, rel)}
    grids = baselines.grids(rec.purchases, snapshot.products)
    for name in baselines.SIMPLE:
        scored = [(_baseline_figures(make(), sig.customers, mask, rel), p)
                  for p, make in grids[name]]
        fig, params = max(scored, key=lambda t: t[0]["ndcg_at_10"])
        figures[name] = {**fig, **({"params": params} if params else {})}
    choice, leans = _describe(best)
    return RecommenderTuning(best, choice, leans, figures, int(rel.shape[0]), len(seen),
                             round(time.perf_counter() - start, 3), note)


def _figures(rec: Recommender, sig: SignalRows, w: RecommendWeights,
             mask: npt.NDArray[np.bool_], rel: npt.NDArray[np.bool_]
             ) -> dict[str, float | str]:
    m = per_customer(blend_rows(rec, sig, w), mask, rel)
    return {k: round(float(v.mean()), 4) for k, v in m.items() if k != "recall_at_10"}


def _baseline_figures(scorer: baselines.Scorer, customers: npt.NDArray[np.int64],
                      mask: npt.NDArray[np.bool_], rel: npt.NDArray[np.bool_]
                      ) -> dict[str, float | str]:
    m = per_customer(scorer(customers), mask, rel)
    return {k: round(float(v.mean()), 4) for k, v in m.items() if k != "recall_at_10"}
