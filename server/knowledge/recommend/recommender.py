"""Product recommendations from the knowledge graph, with a human-readable reason each.

Per request, five signals over the product catalogue are computed by the kernels,
each scaled to [0, 1] and mixed with `RecommendWeights`:

- walk: personalized PageRank seeded with the customer's purchases (recency-weighted)
  and/or the given products, over bought/category/brand/complement edges;
- complements: products listed as going with a seed ("goes with your Y");
- co-purchase: recency-decayed co-purchases by other customers, damped by the target's
  popularity ("often bought with X");
- replenish: consumables that are due again at the customer's own cadence (or the
  product's) ("you bought Y 5 weeks ago; usually re-bought every 4");
- popularity: a small prior that only breaks ties.

Excluded: products the customer owns (unless consumable), returned, out of stock, and
the query products themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec
import numpy as np
import numpy.typing as npt

from kernels.copurchase import copurchase_scores
from kernels.pagerank import personalized_pagerank, walk_graph
from kernels.replenish import replenishment_scores
from kernels.topk import top_k_excluding
from server.errors import InvalidInput, NotFound
from server.knowledge.graph.graph import KnowledgeGraph, category_key

FloatArray = npt.NDArray[np.float64]
SECONDS_PER_DAY = 86400.0


class RecommendWeights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Signal mix. Defaults were picked on the eval's validation protocol (second-to-last
    order of the S demo shop held out), never on the test orders."""

    walk: float = 0.3
    complements: float = 0.6
    copurchase: float = 0.5
    replenish: float = 3.0
    popularity: float = 0.05
    damping: float = 0.5
    tol: float = 1e-8
    # Seed weight of a past purchase halves every `seed_half_life_days`.
    seed_half_life_days: float = 90.0
    copurchase_half_life_days: float = 365.0
    # Co-purchase counts are divided by popularity ** this (0 = raw counts).
    copurchase_popularity_damping: float = 0.5
    edge_weights: dict[str, float] = msgspec.field(default_factory=lambda: {
        "bought": 1.0, "complements": 2.0, "in_category": 0.5, "subcategory_of": 0.5,
        "made_by": 0.3,
    })


class Recommendation(msgspec.Struct, frozen=True):
    product_id: str
    title: str
    score: float
    reason: str


def _days(ts: datetime) -> float:
    return ts.timestamp() / SECONDS_PER_DAY


def _max_scaled(x: FloatArray) -> FloatArray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def _weeks(days: float) -> str:
    if days < 14:
        n = max(1, round(days))
        return f"{n} day{'s' if n != 1 else ''}"
    return f"{round(days / 7)} weeks"


class Recommender:
    """Recommendations over one graph; build once per snapshot, call from any thread."""

    def __init__(self, graph: KnowledgeGraph, weights: RecommendWeights | None = None) -> None:
        self.graph = graph
        self.weights = weights or RecommendWeights()
        snap = graph.snapshot
        self.now = graph.as_of
        self._products = snap.products
        self._pindex = {p.product_id: i for i, p in enumerate(snap.products)}
        self._cindex = {c.customer_id: i for i, c in enumerate(snap.customers)}
        n_items = len(snap.products)
        self._in_stock = np.array([p.in_stock for p in snap.products], dtype=np.bool_)
        self._cadence = np.array([p.replenish_days for p in snap.products], dtype=np.float64)
        self._consumable = self._cadence > 0
        self._complements = [[self._pindex[c] for c in p.complements if c in self._pindex]
                             for p in snap.products]
        self._vertex0 = graph.vertices("product").start
        csr = graph.csr(self.weights.edge_weights)
        self._walk = walk_graph(csr.indptr, csr.indices, csr.weights)
        self._build_purchases(n_items)

    def _build_purchases(self, n_items: int) -> None:
        snap = self.graph.snapshot
        orders = {o.order_id: o for o in snap.orders if o.status != "cancelled"}
        rows = [(self._cindex[o.customer_id], self._pindex[it.product_id], _days(o.ordered_at))
                for it in snap.order_items
                if (o := orders.get(it.order_id)) is not None
                and o.customer_id in self._cindex and it.product_id in self._pindex]
        ev = np.array(rows, dtype=np.float64).reshape(-1, 3)
        cust, item, t = ev[:, 0].astype(np.int64), ev[:, 1].astype(np.int64), ev[:, 2]
        order = np.lexsort((t, item, cust))
        cust, item, t = cust[order], item[order], t[order]
        n_cust = len(self._cindex)
        # Every purchase event, by customer (for seeds and personal cadences).
        self._ev_indptr = np.zeros(n_cust + 1, dtype=np.int64)
        np.cumsum(np.bincount(cust, minlength=n_cust), out=self._ev_indptr[1:])
        self._ev_item, self._ev_time = item, t
        # One entry per distinct (customer, item) with the last time, in both views.
        last = np.ones(cust.shape[0], dtype=np.bool_)
        last[:-1] = (cust[1:] != cust[:-1]) | (item[1:] != item[:-1])
        dc, di, dt = cust[last], item[last], t[last]
        self._cust_indptr = self._ev_indptr.copy()
        np.cumsum(np.bincount(dc, minlength=n_cust), out=self._cust_indptr[1:])
        self._cust_items, self._cust_times = di.astype(np.int32), dt
        by_item = np.argsort(di, kind="stable")
        self._item_indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(di, minlength=n_items), out=self._item_indptr[1:])
        self._item_customers = dc[by_item].astype(np.int32)
        self._item_times = dt[by_item]
        self._popularity = np.bincount(di, minlength=n_items).astype(np.float64)
        self._returned: dict[int, set[int]] = {}
        for r in snap.returns:
            o = orders.get(r.order_id)
            if o is not None and o.customer_id in self._cindex and r.product_id in self._pindex:
                self._returned.setdefault(self._cindex[o.customer_id], set()).add(
                    self._pindex[r.product_id])

    # --- views the evaluation baselines share -------------------------------------

    @property
    def product_ids(self) -> list[str]:
        return [p.product_id for p in self._products]

    @property
    def popularity(self) -> FloatArray:
        """Distinct buyers per product (index = position in snapshot.products)."""
        return self._popularity

    def purchase_views(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], FloatArray,
                                      npt.NDArray[np.int64], npt.NDArray[np.int32], FloatArray]:
        """The (customer, item, last day) views `kernels.copurchase` takes."""
        return (self._cust_indptr, self._cust_items, self._cust_times, self._item_indptr,
                self._item_customers, self._item_times)

    def customer_index(self, customer_id: str) -> int:
        try:
            return self._cindex[customer_id]
        except KeyError:
            raise NotFound(f"unknown customer {customer_id!r}") from None

    def history(self, customer_id: str) -> npt.NDArray[np.int64]:
        """Distinct product indices the customer bought (cancelled orders excluded)."""
        c = self.customer_index(customer_id)
        return np.unique(self._ev_item[self._ev_indptr[c]:self._ev_indptr[c + 1]])

    def excluded(self, customer_id: str | None, product_ids: Sequence[str] = ()
                 ) -> npt.NDArray[np.bool_]:
        """Products never to recommend: owned non-consumables, returned, out of stock, query."""
        out = ~self._in_stock
        if customer_id is not None:
            c = self.customer_index(customer_id)
            owned = np.zeros(len(self._products), dtype=np.bool_)
            owned[self.history(customer_id)] = True
            out = out | (owned & ~self._consumable)
            out[list(self._returned.get(c, ()))] = True
        out[[self._pindex[p] for p in product_ids if p in self._pindex]] = True
        return out

    # --- the call -----------------------------------------------------------------

    def recommend(self, customer_id: str | None, product_ids: Sequence[str] = (),
                  top_k: int = 10, now: datetime | None = None) -> list[Recommendation]:
        if top_k < 1:
            raise InvalidInput("top_k must be at least 1")
        if customer_id is not None and customer_id not in self._cindex:
            raise NotFound(f"unknown customer {customer_id!r}")
        missing = [p for p in product_ids if p not in self._pindex]
        if missing:
            raise NotFound(f"unknown product {missing[0]!r}")
        w = self.weights
        today = _days(now or self.now)
        n_items = len(self._products)
        cidx = self._cindex[customer_id] if customer_id is not None else -1
        seed_w = np.zeros(n_items)
        last_bought = np.full(n_items, np.nan)
        cadence = self._cadence.copy()
        owned = np.zeros(n_items, dtype=np.bool_)
        if cidx >= 0:
            a, b = self._ev_indptr[cidx], self._ev_indptr[cidx + 1]
            items, times = self._ev_item[a:b], self._ev_time[a:b]
            ages = np.maximum(today - times, 0.0)
            np.add.at(seed_w, items, 0.5 ** (ages / w.seed_half_life_days))
            owned[items] = True
            last_bought[items] = -np.inf
            np.maximum.at(last_bought, items, times)
            self._personal_cadence(items, times, cadence)
        query = [self._pindex[p] for p in product_ids]
        if query:
            seed_w[query] += max(1.0, float(seed_w.max()))
        seeds = np.flatnonzero(seed_w > 0)
        if seeds.size == 0:
            signals = {"popularity": _max_scaled(self._popularity)}
            return self._select(signals, seeds, seed_w, last_bought, cadence, today,
                                owned, self.excluded(customer_id, product_ids), top_k, None)

        reset = np.zeros(self.graph.n_vertices)
        reset[self._vertex0 + seeds] = seed_w[seeds]
        ppr, _ = personalized_pagerank(self._walk, reset, damping=w.damping, tol=w.tol)
        walk = ppr[self._vertex0:self._vertex0 + n_items].copy()
        walk[seeds] = 0.0  # a seed's own restart mass says nothing about relevance
        comp = np.zeros(n_items)
        for s in seeds:
            for c in self._complements[s]:
                comp[c] += seed_w[s]
        co, co_best = copurchase_scores(
            seeds, seed_w[seeds], self._cust_indptr, self._cust_items, self._cust_times,
            self._item_indptr, self._item_customers, self._item_times, now=today,
            half_life_days=w.copurchase_half_life_days, exclude_customer=cidx)
        co /= np.maximum(self._popularity, 1.0) ** w.copurchase_popularity_damping
        due = replenishment_scores(last_bought, cadence, today)
        signals = {
            "walk": _max_scaled(walk), "complements": _max_scaled(comp),
            "copurchase": _max_scaled(co), "replenish": due,
            "popularity": _max_scaled(self._popularity),
        }
        return self._select(signals, seeds, seed_w, last_bought, cadence, today, owned,
                            self.excluded(customer_id, product_ids), top_k, co_best)

    def _personal_cadence(self, items: npt.NDArray[np.int64], times: FloatArray,
                          cadence: FloatArray) -> None:
        """Consumables bought 2+ times get the customer's median re-buy interval."""
        for i in np.unique(items):
            if not self._consumable[i]:
                continue
            gaps = np.diff(np.unique(times[items == i]))
            gaps = gaps[gaps >= 1.0]  # same-day repeats are one purchase
            if gaps.size:
                cadence[i] = float(np.median(gaps))

    def _select(self, signals: dict[str, FloatArray], seeds: npt.NDArray[np.int64],
                seed_w: FloatArray, last_bought: FloatArray, cadence: FloatArray,
                today: float, owned: npt.NDArray[np.bool_], exclude: npt.NDArray[np.bool_],
                top_k: int, co_best: npt.NDArray[np.int64] | None) -> list[Recommendation]:
        mix = {k: getattr(self.weights, k) * v for k, v in signals.items()}
        total = np.sum(list(mix.values()), axis=0)
        picked = top_k_excluding(total, top_k, exclude, min_score=0.0)
        out = []
        for j in picked.tolist():
            reason = self._reason(j, mix, seeds, seed_w, owned, last_bought, cadence, today,
                                  co_best)
            p = self._products[j]
            out.append(Recommendation(p.product_id, p.title, round(float(total[j]), 6), reason))
        return out

    def _reason(self, j: int, mix: dict[str, FloatArray], seeds: npt.NDArray[np.int64],
                seed_w: FloatArray, owned: npt.NDArray[np.bool_], last_bought: FloatArray,
                cadence: FloatArray, today: float,
                co_best: npt.NDArray[np.int64] | None) -> str:
        """The most specific true explanation: due re-buy, complement, co-purchase, walk."""
        def strong(signal: str) -> bool:
            return signal in mix and mix[signal][j] > 0

        title = self._products[j].title
        if strong("replenish") and mix["replenish"][j] >= 0.5 * self.weights.replenish:
            return (f"you bought {title} {_weeks(today - last_bought[j])} ago; usually "
                    f"re-bought every {_weeks(cadence[j])}")
        if strong("complements"):
            src = max((s for s in seeds if j in self._complements[s]), key=lambda s: seed_w[s])
            your = "your " if owned[src] else ""
            return f"goes with {your}{self._products[src].title}"
        if strong("copurchase") and co_best is not None and co_best[j] >= 0:
            return f"often bought with {self._products[seeds[co_best[j]]].title}"
        if strong("walk") and seeds.size:
            cat = category_key(self._products[j].category)
            same = [s for s in seeds if category_key(self._products[s].category) == cat]
            anchor = max(same or seeds.tolist(), key=lambda s: seed_w[s])
            return f"customers who bought {self._products[anchor].title} also chose this"
        return f"popular in {category_key(self._products[j].category) or 'the shop'}"
