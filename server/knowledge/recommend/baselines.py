"""Baseline recommenders the served one is measured against, batched over customers.

Each baseline maps customer indices to a (customers x items) score matrix built from
the training purchases only (`PurchaseHistory`; X = the binary customer-item matrix):

- `popularity`: distinct buyers;
- `recent_popularity`: purchases fading with a half-life (days before `as_of`);
- `top_frequency`: the customer's own purchase counts, popularity breaking ties
  (P-TopFreq, Li et al., "A Next Basket Recommendation Reality Check", 2021);
- `item_knn`: cosine item-item similarity of X's columns, summed over the customer's items;
- `rp3beta`: the 3-step walk customer -> item -> customer -> item, W_ij = (P_iu P_ui)_ij ** alpha
  / pop_j ** beta (Paudel et al. 2017; Dacrema et al., RecSys 2019);
- `ease`: B = argmin |X - XB|^2 + lam |B|^2 with diag(B) = 0, closed form
  B = I - P diag(1 / diag(P)), P = (X^T X + lam I)^-1 (Steck, WWW 2019).

Side information (`side_features`): category path, brand and listed complements as
extra rows of X (Ning & Karypis's SSLIM idea; for EASE the "collective" closed form),
so item-kNN and EASE can see what the graph recommender sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import numpy.typing as npt

from server.knowledge.graph.graph import category_chain
from server.knowledge.recommend.purchases import PurchaseHistory
from server.knowledge.shop.schema import Product

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Scorer = Callable[[IntArray], FloatArray]
MAX_DENSE_ITEMS = 20_000  # item-item models are dense (items x items)


def interactions(h: PurchaseHistory, customers: IntArray | None = None) -> FloatArray:
    """Binary customer-item rows (all customers when None)."""
    cs = np.arange(h.n_customers) if customers is None else customers
    x = np.zeros((cs.shape[0], h.n_items))
    for row, c in enumerate(cs.tolist()):
        x[row, h.cust_items[h.cust_indptr[c]:h.cust_indptr[c + 1]]] = 1.0
    return x


def gram(h: PurchaseHistory, side: FloatArray | None = None, row_weights: bool = False
         ) -> FloatArray:
    """X^T X (+ F^T F with side rows F), in chunks of customers; with `row_weights`
    each customer's row counts 1 / |items| (the P_ui of RP3beta)."""
    g = np.zeros((h.n_items, h.n_items))
    for start in range(0, h.n_customers, 4096):
        x = interactions(h, np.arange(start, min(start + 4096, h.n_customers)))
        if row_weights:
            g += (x / np.maximum(x.sum(axis=1, keepdims=True), 1.0)).T @ x
        else:
            g += x.T @ x
    if side is not None:
        g += side.T @ side
    return g


def side_features(products: Sequence[Product], index: dict[str, int], weight: float = 1.0
                  ) -> FloatArray:
    """One row per category (path prefix), brand and complement list, scaled by weight."""
    rows: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(products):
        for cat in category_chain(p.category):
            rows.setdefault(("category", cat), []).append(i)
        if p.brand:
            rows.setdefault(("brand", p.brand), []).append(i)
        group = [i] + [index[c] for c in p.complements if c in index]
        if len(group) > 1:
            rows[("complements", p.product_id)] = group
    f = np.zeros((len(rows), len(products)))
    for r, members in enumerate(rows.values()):
        f[r, members] = weight
    return f


def popularity(h: PurchaseHistory) -> Scorer:
    return lambda cs: np.broadcast_to(h.popularity, (cs.shape[0], h.n_items)).copy()


def recent_popularity(h: PurchaseHistory, half_life_days: float) -> Scorer:
    pop = h.recent_popularity(half_life_days)
    return lambda cs: np.broadcast_to(pop, (cs.shape[0], h.n_items)).copy()


def top_frequency(h: PurchaseHistory, tie_weight: float = 0.01) -> Scorer:
    """Own counts scaled to [0, 1] per customer plus tie_weight x popularity scaled
    to [0, 1] (tie_weight < 1 / max count keeps counts first)."""
    pop = h.popularity / max(float(h.popularity.max()), 1.0)

    def score(cs: IntArray) -> FloatArray:
        freq = np.stack([h.frequency(c) for c in cs.tolist()]) if cs.size else np.zeros(
            (0, h.n_items))
        top = np.maximum(freq.max(axis=1, keepdims=True), 1.0)
        return freq / top + tie_weight * pop

    return score


def item_knn(h: PurchaseHistory, side: FloatArray | None = None) -> Scorer:
    g = gram(h, side)
    norm = np.sqrt(np.maximum(np.diag(g), 1e-12))
    sim = g / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    return lambda cs: interactions(h, cs) @ sim


def rp3beta(h: PurchaseHistory, alpha: float = 1.0, beta: float = 0.5) -> Scorer:
    pop = np.maximum(h.popularity, 1.0)
    w = (gram(h, row_weights=True) / pop[:, None]) ** alpha / pop[None, :] ** beta
    np.fill_diagonal(w, 0.0)

    def score(cs: IntArray) -> FloatArray:
        x = interactions(h, cs)
        return (x / np.maximum(x.sum(axis=1, keepdims=True), 1.0)) @ w

    return score


def ease(h: PurchaseHistory, lam: float = 100.0, side: FloatArray | None = None) -> Scorer:
    g = gram(h, side)
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return lambda cs: interactions(h, cs) @ b


Grid = list[tuple[str, Callable[[], Scorer]]]


def grids(h: PurchaseHistory, products: Sequence[Product]) -> dict[str, Grid]:
    """name -> [(hyper-parameters, factory)]; the grid is searched on a validation split.
    Item-item models are left out above `MAX_DENSE_ITEMS` products."""
    out: dict[str, Grid] = {
        "popularity": [("", partial(popularity, h))],
        "recent_popularity": [(f"half_life_days={d}", partial(recent_popularity, h, d))
                              for d in (14.0, 30.0, 90.0, 365.0)],
        "top_frequency": [("", partial(top_frequency, h))],
    }
    if h.n_items > MAX_DENSE_ITEMS:
        return out
    side = side_features(products, h.pindex)
    out["item_knn"] = [("", partial(item_knn, h))]
    out["rp3beta"] = [(f"alpha=1,beta={b}", partial(rp3beta, h, 1.0, b)) for b in (0.0, 0.3, 0.6)]
    out["ease"] = [(f"lambda={lam}", partial(ease, h, lam)) for lam in (10.0, 100.0, 1000.0)]
    out["item_knn_side"] = [(f"side_weight={a}", partial(item_knn, h, side * a))
                            for a in (1.0, 3.0)]
    out["ease_side"] = [(f"lambda={lam},side_weight={a}", partial(ease, h, lam, side * a))
                        for lam in (10.0, 100.0) for a in (1.0, 3.0)]
    return out


SIMPLE = ("popularity", "recent_popularity", "top_frequency")
SIDE_INFO = ("item_knn_side", "ease_side")
