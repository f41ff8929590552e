"""Every kernel against its naive reference (tests/naive.py), and PageRank against igraph."""

from __future__ import annotations

import math

import igraph as ig
import numpy as np
import pytest

from kernels import warmup
from kernels.copurchase import copurchase_scores
from kernels.pagerank import personalized_pagerank, walk_graph
from kernels.replenish import replenishment_scores
from kernels.scoring import neighbour_scores, reweight_edges
from kernels.topk import top_k_excluding
from tests import naive


def _csr(n: int, edges: list[tuple[int, int]], weights: list[float]):
    src = np.array([u for u, _ in edges] + [v for _, v in edges], dtype=np.int64)
    dst = np.array([v for _, v in edges] + [u for u, _ in edges], dtype=np.int32)
    w = np.array(weights + weights, dtype=np.float64)
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
    return indptr, dst[order], w[order]


def _random_graph(n: int, m: int, seed: int) -> tuple[list[tuple[int, int]], list[float]]:
    rng = np.random.default_rng(seed)
    edges: set[tuple[int, int]] = set()
    while len(edges) < m:
        u, v = (int(x) for x in rng.integers(0, n, 2))
        if u != v:
            edges.add((min(u, v), max(u, v)))
    ordered = sorted(edges)
    return ordered, [float(x) for x in rng.uniform(0.1, 3.0, len(ordered))]


def test_warmup_compiles_everything() -> None:
    assert warmup() >= 0.0


def test_pagerank_matches_naive_with_isolated_seed() -> None:
    # Vertex 5 is isolated and seeded: its walker restarts into the reset distribution.
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)]
    weights = [1.0, 2.0, 1.0, 3.0, 0.5]
    reset = [0.5, 0.0, 0.0, 0.0, 0.0, 0.5]
    indptr, indices, w = _csr(6, edges, weights)
    got, iters = personalized_pagerank(walk_graph(indptr, indices, w), reset, tol=1e-13,
                                       max_iter=1000)
    want = naive.pagerank(6, edges, weights, reset)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert 1 < iters < 1000
    assert math.isclose(float(got.sum()), 1.0)


def test_pagerank_matches_igraph_on_random_graph() -> None:
    n = 3000
    edges, weights = _random_graph(n, 12000, seed=3)
    g = ig.Graph(n, edges)
    rng = np.random.default_rng(5)
    reset = np.zeros(n)
    reset[rng.choice(n, 8, replace=False)] = rng.uniform(0.5, 2.0, 8)
    want = np.array(g.personalized_pagerank(reset=reset.tolist(), weights=weights, damping=0.85))
    indptr, indices, w = _csr(n, edges, weights)
    got, _ = personalized_pagerank(walk_graph(indptr, indices, w), reset, damping=0.85,
                                   tol=1e-12)
    np.testing.assert_allclose(got, want, atol=1e-9, rtol=1e-6)
    top_want = np.argsort(-want, kind="stable")[:100]
    top_got = np.argsort(-got, kind="stable")[:100]
    assert top_got.tolist() == top_want.tolist()


def test_pagerank_rejects_bad_inputs() -> None:
    indptr, indices, w = _csr(3, [(0, 1), (1, 2)], [1.0, 1.0])
    walk = walk_graph(indptr, indices, w)
    with pytest.raises(ValueError, match="positive entry"):
        personalized_pagerank(walk, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one entry per vertex"):
        personalized_pagerank(walk, [1.0, 0.0])
    with pytest.raises(ValueError, match="damping"):
        personalized_pagerank(walk, [1.0, 0.0, 0.0], damping=1.0)
    with pytest.raises(ValueError, match="out of range"):
        walk_graph(indptr, np.array([1, 0, 2, 7]), w)
    with pytest.raises(ValueError, match="non-negative"):
        walk_graph(indptr, indices, -w)


def test_reweight_and_neighbour_scores_match_naive() -> None:
    rng = np.random.default_rng(1)
    weights = rng.uniform(0, 2, 50)
    types = rng.integers(0, 4, 50).astype(np.int8)
    tw = [0.0, 1.0, 0.5, 3.0]
    got = reweight_edges(weights, types, tw)
    np.testing.assert_allclose(got, naive.reweight(weights.tolist(), types.tolist(), tw))
    with pytest.raises(ValueError, match="int8"):
        reweight_edges(weights, types.astype(np.int64), tw)
    with pytest.raises(ValueError, match="outside"):
        reweight_edges(weights, np.full(50, 4, dtype=np.int8), tw)

    edges = [(0, 1), (0, 2), (2, 3)]
    indptr, indices, w = _csr(4, edges, [1.0, 2.0, 4.0])
    scores = neighbour_scores(indptr, indices, w, [0, 3], [1.0, 0.5])
    np.testing.assert_allclose(scores, [0.0, 1.0, 2.0 + 2.0, 0.0])


PurchaseViews = tuple[list[int], list[int], list[float], list[int], list[int], list[float]]


def _purchase_views(
    purchases: dict[int, dict[int, float]], n_cust: int, n_items: int
) -> PurchaseViews:
    cust_indptr = [0]
    cust_items: list[int] = []
    cust_times: list[float] = []
    for c in range(n_cust):
        for item, t in sorted(purchases.get(c, {}).items()):
            cust_items.append(item)
            cust_times.append(t)
        cust_indptr.append(len(cust_items))
    by_item: list[list[tuple[int, float]]] = [[] for _ in range(n_items)]
    for c in range(n_cust):
        for item, t in purchases.get(c, {}).items():
            by_item[item].append((c, t))
    item_indptr = [0]
    item_customers: list[int] = []
    item_times: list[float] = []
    for rows in by_item:
        for c, t in rows:
            item_customers.append(c)
            item_times.append(t)
        item_indptr.append(len(item_customers))
    return cust_indptr, cust_items, cust_times, item_indptr, item_customers, item_times


@pytest.mark.parametrize("half_life", [30.0, 0.0])
def test_copurchase_matches_naive(half_life: float) -> None:
    rng = np.random.default_rng(7)
    n_cust, n_items = 40, 15
    purchases = {
        c: {int(i): float(rng.uniform(0, 100)) for i in rng.choice(n_items, 4, replace=False)}
        for c in range(n_cust)
    }
    views = _purchase_views(purchases, n_cust, n_items)
    seeds, sw = [2, 5, 11], [1.0, 0.5, 2.0]
    got, best = copurchase_scores(seeds, sw, *views, now=120.0, half_life_days=half_life,
                                  exclude_customer=3)
    want, want_best = naive.copurchase(purchases, seeds, sw, n_items, 120.0, half_life,
                                       exclude_customer=3)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert best.tolist() == want_best
    assert got.max() > 0


def test_copurchase_exact_small_case() -> None:
    # Customer 0 bought items 0 (day 10) and 1 (day 20); customer 1 bought 0 and 2 at day 0.
    purchases = {0: {0: 10.0, 1: 20.0}, 1: {0: 0.0, 2: 0.0}}
    views = _purchase_views(purchases, 2, 3)
    got, best = copurchase_scores([0], [1.0], *views, now=20.0, half_life_days=10.0)
    np.testing.assert_allclose(got, [0.0, 1.0, 0.25])
    assert best.tolist() == [-1, 0, 0]
    with pytest.raises(ValueError, match="positive"):
        copurchase_scores([0], [0.0], *views, now=20.0)


def test_replenishment_matches_naive_and_peaks_when_due() -> None:
    last = [0.0, 0.0, 0.0, 0.0, float("nan"), 50.0]
    cadence = [30.0, 60.0, 10.0, 0.0, 30.0, 30.0]
    got = replenishment_scores(last, cadence, now=30.0, spread=0.25)
    np.testing.assert_allclose(got, naive.replenish(last, cadence, 30.0, 0.25))
    assert got[0] == 1.0  # exactly due
    assert got[3] == 0.0 and got[4] == 0.0 and got[5] == 0.0  # no cadence, never bought, future
    # Half a cycle early scores lower than half a cycle late (overdue decays slower).
    early, late = replenishment_scores([0.0, 0.0], [60.0, 20.0], now=30.0)
    assert early < late


def test_top_k_excludes_masks_and_breaks_ties_by_index() -> None:
    rng = np.random.default_rng(11)
    scores = np.round(rng.uniform(0, 1, 500), 2)  # rounding creates ties
    owned = rng.random(500) < 0.2
    returned = rng.random(500) < 0.1
    oos = rng.random(500) < 0.1
    got = top_k_excluding(scores, 25, owned, returned, oos, min_score=0.05)
    excluded = (owned | returned | oos).tolist()
    assert got.tolist() == naive.top_k(scores.tolist(), 25, excluded, 0.05)
    assert not (owned[got] | returned[got] | oos[got]).any()


def test_top_k_edge_cases() -> None:
    assert top_k_excluding(np.array([]), 3).tolist() == []
    assert top_k_excluding([0.1, 0.3, 0.2], 10).tolist() == [1, 2, 0]
    assert top_k_excluding([0.1, 0.3, 0.2], 0).tolist() == []
    assert top_k_excluding([0.0, 0.3, 0.0], 3, min_score=0.0).tolist() == [1]
    all_out = np.ones(3, dtype=np.bool_)
    assert top_k_excluding([0.1, 0.3, 0.2], 2, out_of_stock=all_out).tolist() == []
    with pytest.raises(ValueError, match="bool"):
        top_k_excluding([0.1, 0.3], 1, owned=np.array([0, 1]))


@pytest.mark.parametrize("omega", [0.8, 1.0, 1.4, 1.8])
def test_pagerank_sor_factor_changes_speed_not_answer(omega: float) -> None:
    edges, weights = _random_graph(200, 600, seed=9)
    reset = [1.0] + [0.0] * 199
    indptr, indices, w = _csr(200, edges, weights)
    walk = walk_graph(indptr, indices, w)
    got, _ = personalized_pagerank(walk, reset, tol=1e-13, max_iter=2000, omega=omega)
    np.testing.assert_allclose(got, naive.pagerank(200, edges, weights, reset), atol=1e-11)
    with pytest.raises(ValueError, match="omega"):
        personalized_pagerank(walk, reset, omega=2.0)


def test_walk_graph_stores_float32_only_when_lossless() -> None:
    indptr, indices, w = _csr(3, [(0, 1), (1, 2)], [1.0, 2.5])
    assert walk_graph(indptr, indices, w).weights.dtype == np.float32
    indptr, indices, w = _csr(3, [(0, 1), (1, 2)], [1.0, 0.1])
    walk = walk_graph(indptr, indices, w)
    assert walk.weights.dtype == np.float64
    np.testing.assert_allclose(walk.strength[walk.rank], [1.0, 1.1, 0.1])
    assert walk.order.tolist() == [1, 0, 2]  # vertex 1 has the highest degree


def test_pagerank_self_loop_is_solved_exactly() -> None:
    # Row 2 lists its self-loop once; the naive dense matrix holds it once too.
    indptr = np.array([0, 1, 3, 5], dtype=np.int64)
    indices = np.array([1, 0, 2, 1, 2], dtype=np.int32)
    w = np.array([1.0, 1.0, 2.0, 2.0, 3.0])
    got, _ = personalized_pagerank(walk_graph(indptr, indices, w), [1.0, 0.0, 0.0],
                                   tol=1e-14, max_iter=5000)
    want = naive.pagerank(3, [(0, 1), (1, 2), (2, 2)], [1.0, 2.0, 3.0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(got, want, atol=1e-11)
