"""Product recommendations from the knowledge graph, with a human-readable reason each.

Per request, six signals over the product catalogue are computed by the kernels,
each scaled to [0, 1] and mixed with `RecommendWeights` (which `tuning.tune` picks per
shop on its own history):

- walk: personalized PageRank seeded with the customer's purchases (recency-weighted)
  and/or the given products, over bought/category/brand/complement edges, by local
  forward push (`kernels.push`) on a layout with the customers folded into the
  products they bought (exact; the cost grows with the catalogue, not with the
  customers or orders), divided by popularity ** `walk_popularity_penalty` (the
  RP3beta correction);
- complements: products listed as going with a seed ("goes with your Y");
- co-purchase: recency-decayed co-purchases by other customers (each seed's most
  recent `copurchase_max_buyers` buyers), damped by the target's popularity ("often
  bought with X");
- replenish: consumables that are due again at the customer's own cadence (or the
  product's) ("you bought Y 5 weeks ago; usually re-bought every 4");
- repeat: how often the customer bought the product (personal top-frequency)
  ("you buy this every ~30 days");
- popularity: buyers per product, purchases fading with `popularity_half_life_days`
  (0 = all-time distinct buyers) ("popular in Category this month").

Excluded: products the customer owns (unless consumable), returned, out of stock, and
the query products themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt

from kernels.copurchase import copurchase_from_views, purchase_views
from kernels.pagerank import WalkGraph
from kernels.push import eliminate_vertices, local_pagerank
from kernels.replenish import replenishment_scores
from kernels.topk import top_k_excluding
from server.errors import InvalidInput, NotFound
from server.knowledge.graph.graph import KnowledgeGraph, category_key
from server.knowledge.recommend.purchases import PurchaseHistory, days

FloatArray = npt.NDArray[np.float64]
SIGNALS = ("walk", "complements", "copurchase", "replenish", "repeat", "popularity")


class RecommendWeights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Signal mix and walk settings. The defaults are the starting point of the
    per-shop tuning (`tuning.tune`), which serving replaces with its choice."""

    walk: float = 0.3
    complements: float = 0.6
    copurchase: float = 0.5
    replenish: float = 3.0
    repeat: float = 0.0
    popularity: float = 0.05
    # Walk scores are divided by popularity ** this before scaling (0 = plain walk).
    walk_popularity_penalty: float = 0.0
    # A purchase's weight in the popularity prior halves every this many days (0 = off).
    popularity_half_life_days: float = 0.0
    damping: float = 0.5
    # Forward push stops when every residual is below push_eps * vertex strength / the
    # products' total strength (relative, so shops of any size get the same accuracy).
    push_eps: float = 1e-3
    # Seed weight of a past purchase halves every `seed_half_life_days`.
    seed_half_life_days: float = 90.0
    copurchase_half_life_days: float = 365.0
    # Co-purchase counts are divided by popularity ** this (0 = raw counts).
    copurchase_popularity_damping: float = 0.5
    # Co-purchase evidence per seed: its most recent this many buyers (0 = all).
    copurchase_max_buyers: int = 300
    edge_weights: dict[str, float] = msgspec.field(default_factory=lambda: {
        "bought": 1.0, "complements": 2.0, "in_category": 0.5, "subcategory_of": 0.5,
        "made_by": 0.3,
    })


class Recommendation(msgspec.Struct, frozen=True):
    product_id: str
    title: str
    score: float
    reason: str


class RequestSignals(NamedTuple):
    """One request's signals over the products (walk and repeat = purchase counts
    unscaled, the rest in [0, 1]) and what the reasons need."""

    walk: FloatArray
    complements: FloatArray
    copurchase: FloatArray
    replenish: FloatArray
    repeat: FloatArray
    seeds: npt.NDArray[np.int64]
    seed_w: FloatArray
    last_bought: FloatArray
    cadence: FloatArray
    owned: npt.NDArray[np.bool_]
    co_best: npt.NDArray[np.int64] | None
    today: float


def push_tolerance(walk: WalkGraph, relative: float, first: int, count: int) -> float:
    """The push kernel's eps for a relative tolerance: relative / the total strength of
    the vertices first:first + count (the products)."""
    total = float(walk.strength[walk.rank[first:first + count]].sum())
    return relative / total if total > 0 else relative


def max_scaled(x: FloatArray) -> FloatArray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def _weeks(days: float) -> str:
    if days < 14:
        n = max(1, round(days))
        return f"{n} day{'s' if n != 1 else ''}"
    return f"{round(days / 7)} weeks"


class Recommender:
    """Recommendations over one graph; build once per snapshot, call from any thread."""

    def __init__(self, graph: KnowledgeGraph, weights: RecommendWeights | None = None,
                 history: PurchaseHistory | None = None) -> None:
        self.graph = graph
        self.weights = weights or RecommendWeights()
        snap = graph.snapshot
        self.now = graph.as_of
        self._products = snap.products
        self.purchases = history or PurchaseHistory(snap, graph.as_of)
        h = self.purchases
        self._pindex = h.pindex
        self._complements = [[h.pindex[c] for c in p.complements if c in h.pindex]
                             for p in snap.products]
        self._vertex0 = graph.vertices("product").start
        self._walk = self._walk_layout(self.weights)
        self._views = purchase_views(*h.views())

    def _walk_layout(self, w: RecommendWeights) -> WalkGraph:
        """The walk with the customers folded into the products they bought (exact for
        the products' scores; per-request cost then depends on the catalogue only)."""
        csr = self.graph.csr(w.edge_weights)
        customers = np.arange(self.graph.vertices("customer").start,
                              self.graph.vertices("customer").stop)
        return eliminate_vertices(csr.indptr, csr.indices, csr.weights, customers, w.damping)

    # --- views the evaluation baselines share -------------------------------------

    @property
    def product_ids(self) -> list[str]:
        return self.purchases.product_ids

    @property
    def popularity(self) -> FloatArray:
        """Distinct buyers per product (index = position in snapshot.products)."""
        return self.purchases.popularity

    def customer_index(self, customer_id: str) -> int:
        return self.purchases.customer(customer_id)

    def history(self, customer_id: str) -> npt.NDArray[np.int64]:
        """Distinct product indices the customer bought (cancelled orders excluded)."""
        return np.unique(self.purchases.events(self.customer_index(customer_id))[0])

    def excluded(self, customer_id: str | None, product_ids: Sequence[str] = ()
                 ) -> npt.NDArray[np.bool_]:
        """Products never to recommend: owned non-consumables, returned, out of stock, query."""
        h = self.purchases
        out = ~h.in_stock
        if customer_id is not None:
            c = self.customer_index(customer_id)
            out = out | (h.owned(c) & ~h.consumable) | h.returned_mask(c)
        out[[self._pindex[p] for p in product_ids if p in self._pindex]] = True
        return out

    # --- the call -----------------------------------------------------------------

    def recommend(self, customer_id: str | None, product_ids: Sequence[str] = (),
                  top_k: int = 10, now: datetime | None = None) -> list[Recommendation]:
        if top_k < 1:
            raise InvalidInput("top_k must be at least 1")
        sig = self.signals(customer_id, product_ids, now)
        mix = self.blend(sig)
        total = np.sum(list(mix.values()), axis=0)
        picked = top_k_excluding(total, top_k, self.excluded(customer_id, product_ids),
                                 min_score=0.0)
        out = []
        for j in picked.tolist():
            p = self._products[j]
            out.append(Recommendation(p.product_id, p.title, round(float(total[j]), 6),
                                      self._reason(j, mix, sig)))
        return out

    def signals(self, customer_id: str | None, product_ids: Sequence[str] = (),
                now: datetime | None = None) -> RequestSignals:
        """Every signal of one request, before weighting (the tuner reuses these)."""
        h = self.purchases
        if customer_id is not None and customer_id not in h.cindex:
            raise NotFound(f"unknown customer {customer_id!r}")
        missing = [p for p in product_ids if p not in self._pindex]
        if missing:
            raise NotFound(f"unknown product {missing[0]!r}")
        w = self.weights
        today = days(now or self.now)
        n_items = h.n_items
        cidx = h.cindex[customer_id] if customer_id is not None else -1
        seed_w = np.zeros(n_items)
        last_bought = np.full(n_items, np.nan)
        cadence = h.cadence.copy()
        owned = np.zeros(n_items, dtype=np.bool_)
        repeat = np.zeros(n_items)
        if cidx >= 0:
            items, times = h.events(cidx)
            ages = np.maximum(today - times, 0.0)
            np.add.at(seed_w, items, 0.5 ** (ages / w.seed_half_life_days))
            owned[items] = True
            last_bought[items] = -np.inf
            np.maximum.at(last_bought, items, times)
            self._personal_cadence(items, times, cadence)
            repeat = h.frequency(cidx)
        query = [self._pindex[p] for p in product_ids]
        if query:
            seed_w[query] += max(1.0, float(seed_w.max()))
        seeds = np.flatnonzero(seed_w > 0)
        zero = np.zeros(n_items)
        if seeds.size == 0:
            return RequestSignals(zero, zero, zero, zero, repeat, seeds, seed_w, last_bought,
                                  cadence, owned, None, today)
        local = local_pagerank(self._walk, self._vertex0 + seeds, seed_w[seeds],
                               damping=w.damping, eps=push_tolerance(self._walk, w.push_eps,
                                                                     self._vertex0, n_items))
        walk = np.zeros(n_items)
        on = (local.vertices >= self._vertex0) & (local.vertices < self._vertex0 + n_items)
        walk[local.vertices[on] - self._vertex0] = local.scores[on]
        walk[seeds] = 0.0  # a seed's own restart mass says nothing about relevance
        comp = np.zeros(n_items)
        for s in seeds:
            for c in self._complements[s]:
                comp[c] += seed_w[s]
        co, co_best = copurchase_from_views(
            seeds, seed_w[seeds], self._views, now=today,
            half_life_days=w.copurchase_half_life_days, exclude_customer=cidx,
            max_buyers=w.copurchase_max_buyers)
        co /= np.maximum(h.popularity, 1.0) ** w.copurchase_popularity_damping
        due = replenishment_scores(last_bought, cadence, today)
        return RequestSignals(walk, max_scaled(comp), max_scaled(co), due, repeat, seeds,
                              seed_w, last_bought, cadence, owned, co_best, today)

    def walk_signal(self, walk: FloatArray, penalty: float) -> FloatArray:
        if penalty:
            walk = walk / np.maximum(self.purchases.popularity, 1.0) ** penalty
        return max_scaled(walk)

    def blend(self, sig: RequestSignals, weights: RecommendWeights | None = None
              ) -> dict[str, FloatArray]:
        """Each signal times its weight (the sum is the score)."""
        w = weights or self.weights
        pop = max_scaled(self.purchases.recent_popularity(w.popularity_half_life_days))
        return {
            "walk": w.walk * self.walk_signal(sig.walk, w.walk_popularity_penalty),
            "complements": w.complements * sig.complements,
            "copurchase": w.copurchase * sig.copurchase,
            "replenish": w.replenish * sig.replenish,
            "repeat": w.repeat * max_scaled(sig.repeat),
            "popularity": w.popularity * pop,
        }

    def _personal_cadence(self, items: npt.NDArray[np.int64], times: FloatArray,
                          cadence: FloatArray) -> None:
        """Consumables bought 2+ times get the customer's median re-buy interval."""
        for i in np.unique(items):
            if not self.purchases.consumable[i]:
                continue
            gaps = np.diff(np.unique(times[items == i]))
            gaps = gaps[gaps >= 1.0]  # same-day repeats are one purchase
            if gaps.size:
                cadence[i] = float(np.median(gaps))

    def _reason(self, j: int, mix: dict[str, FloatArray], sig: RequestSignals) -> str:
        """The most specific true explanation: due re-buy, complement, co-purchase, walk,
        the customer's own habit, popularity."""
        def strong(signal: str) -> bool:
            return bool(mix[signal][j] > 0)

        title = self._products[j].title
        seeds, seed_w = sig.seeds, sig.seed_w
        if strong("replenish") and mix["replenish"][j] >= 0.5 * self.weights.replenish:
            return (f"you bought {title} {_weeks(sig.today - sig.last_bought[j])} ago; "
                    f"usually re-bought every {_weeks(sig.cadence[j])}")
        if strong("repeat") and mix["repeat"][j] >= max(v[j] for v in mix.values()):
            if sig.cadence[j] > 0:
                return f"you buy this every ~{round(sig.cadence[j])} days"
            times = int(sig.repeat[j])
            return f"you bought this {times} times" if times > 1 else "you bought this before"
        if strong("complements"):
            src = max((s for s in seeds if j in self._complements[s]), key=lambda s: seed_w[s])
            your = "your " if sig.owned[src] else ""
            return f"goes with {your}{self._products[src].title}"
        if strong("copurchase") and sig.co_best is not None and sig.co_best[j] >= 0:
            return f"often bought with {self._products[seeds[sig.co_best[j]]].title}"
        if strong("walk") and seeds.size:
            cat = category_key(self._products[j].category)
            same = [s for s in seeds if category_key(self._products[s].category) == cat]
            anchor = max(same or seeds.tolist(), key=lambda s: seed_w[s])
            return f"customers who bought {self._products[anchor].title} also chose this"
        where = category_key(self._products[j].category) or "the shop"
        half_life = self.weights.popularity_half_life_days
        return f"popular in {where}{' this month' if 0 < half_life <= 45 else ''}"
