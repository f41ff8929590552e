"""Baselines against naive definitions on a small random purchase history."""

from __future__ import annotations

import numpy as np
import pytest

from server.knowledge.recommend import baselines
from server.knowledge.recommend.purchases import PurchaseHistory
from tests.popularity_shop import popularity_shop


@pytest.fixture(scope="module")
def history() -> PurchaseHistory:
    snap = popularity_shop(customers=60, products=15, seed=5)
    return PurchaseHistory(snap, snap.as_of)  # type: ignore[arg-type]


def _x(h: PurchaseHistory) -> np.ndarray:
    x = np.zeros((h.n_customers, h.n_items))
    for c in range(h.n_customers):
        for i in h.events(c)[0].tolist():
            x[c, i] = 1.0
    return x


def test_ease_is_the_per_column_ridge_regression(history: PurchaseHistory) -> None:
    x, lam = _x(history), 5.0
    n = history.n_items
    b = np.zeros((n, n))
    for j in range(n):  # x_j ~ X_{-j} b_j with a ridge penalty, b_jj = 0
        others = [i for i in range(n) if i != j]
        a = x[:, others]
        b[others, j] = np.linalg.solve(a.T @ a + lam * np.eye(n - 1), a.T @ x[:, j])
    cs = np.arange(10)
    np.testing.assert_allclose(baselines.ease(history, lam)(cs), x[cs] @ b, atol=1e-9)


def test_rp3beta_is_the_three_step_walk(history: PurchaseHistory) -> None:
    x = _x(history)
    pop = np.maximum(x.sum(axis=0), 1.0)
    deg = np.maximum(x.sum(axis=1), 1.0)
    n, beta = history.n_items, 0.4
    w = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:  # item i -> one of its buyers u -> one of u's items j
                w[i, j] = sum(x[u, i] / pop[i] * x[u, j] / deg[u]
                              for u in range(x.shape[0])) / pop[j] ** beta
    cs = np.arange(8)
    want = (x[cs] / deg[cs, None]) @ w
    np.testing.assert_allclose(baselines.rp3beta(history, 1.0, beta)(cs), want, atol=1e-12)


def test_item_knn_top_frequency_and_popularity(history: PurchaseHistory) -> None:
    x = _x(history)
    cs = np.arange(6)
    norms = np.linalg.norm(x, axis=0)
    sim = (x.T @ x) / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    np.testing.assert_allclose(baselines.item_knn(history)(cs), x[cs] @ sim, atol=1e-12)
    freq = baselines.top_frequency(history)(cs)
    for row, c in enumerate(cs.tolist()):
        counts = history.frequency(c)
        owned = counts > 0
        # Every bought product outranks every other; among the rest, popularity rules.
        assert freq[row][owned].min() > freq[row][~owned].max()
        assert np.argmax(np.where(owned, -1, freq[row])) == np.argmax(
            np.where(owned, -1, history.popularity))
    pop = baselines.popularity(history)(cs)
    assert (pop == x.sum(axis=0)).all()


def test_side_features_rows() -> None:
    snap = popularity_shop(customers=5, products=4)
    products = [snap.products[0].__class__(**{**{f: getattr(p, f) for f in p.__struct_fields__},
                                              "complements": ("P0001",) if i == 0 else ()})
                for i, p in enumerate(snap.products)]
    f = baselines.side_features(products, {p.product_id: i for i, p in enumerate(products)})
    rows = {tuple(np.flatnonzero(r).tolist()) for r in f}
    assert (0, 1) in rows  # P0000 lists P0001 as a complement
    assert all(f.sum(axis=0) >= 3)  # every product: category, subcategory, brand
