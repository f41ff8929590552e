"""Forward-push local PageRank (kernels/push.py) against the naive push, the dense
power iteration and the exact SOR kernel."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.pagerank import personalized_pagerank, walk_graph
from kernels.push import PushWorkspace, eliminate_vertices, local_pagerank
from tests import naive
from tests.unit.test_kernels_pagerank import _clusters, _csr


def _dense(n: int, vertices: np.ndarray, scores: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    out[vertices] = scores
    return out


def test_push_matches_the_naive_push_and_its_invariant() -> None:
    n = 120
    edges, weights = _clusters(n, [70, 40], seed=5)
    edges, weights = [*edges, (3, 3)], [*weights, 1.5]  # a self-loop on vertex 3
    seeds = {int(edges[0][0]): 2.0, int(edges[-2][1]): 1.0}
    walk = walk_graph(*_csr(n, edges, weights))
    for eps in (1e-3, 1e-5):
        got = local_pagerank(walk, list(seeds), list(seeds.values()), damping=0.6, eps=eps)
        p = _dense(n, got.vertices, got.scores)
        want_p, want_res = naive.forward_push(n, edges, weights, seeds, 0.6, eps)
        exact = naive.pagerank(n, edges, weights, [seeds.get(v, 0.0) for v in range(n)], 0.6)
        # p is a lower bound of the exact scores; what is missing is the residual mass.
        assert np.all(p <= exact + 1e-12)
        assert float((exact - p).sum()) == pytest.approx(got.residual, abs=1e-10)
        strength = np.bincount(np.array([u for u, v in edges] + [v for u, v in edges if u != v]),
                               weights=np.array(weights + [w for (u, v), w in zip(
                                   edges, weights, strict=True) if u != v]), minlength=n)
        assert got.residual <= eps * strength.sum()
        # Both pushes stop within the same bound of the exact scores.
        bound = eps * strength
        assert np.all(np.abs(p - np.array(want_p)) <= bound + 1e-12)
        assert want_res <= eps * strength.sum()


def test_push_top_scores_agree_with_the_exact_kernel() -> None:
    n = 3000
    rng = np.random.default_rng(9)
    u, v = rng.integers(0, n, 15000), rng.integers(0, n, 15000)
    edges = sorted({(int(min(a, b)), int(max(a, b))) for a, b in zip(u, v, strict=True) if a != b})
    weights = [float(x) for x in rng.uniform(0.2, 2.0, len(edges))]
    walk = walk_graph(*_csr(n, edges, weights))
    seeds = rng.choice(n, 4, replace=False)
    reset = np.zeros(n)
    reset[seeds] = 1.0
    exact, _ = personalized_pagerank(walk, reset, damping=0.5, tol=1e-12)
    got = local_pagerank(walk, seeds, np.ones(4), damping=0.5, eps=1e-7)
    approx = _dense(n, got.vertices, got.scores)
    top = set(np.argsort(-exact, kind="stable")[:20].tolist())
    assert len(top & set(np.argsort(-approx, kind="stable")[:20].tolist())) >= 19
    coarse = local_pagerank(walk, seeds, np.ones(4), damping=0.5, eps=1e-3)
    assert coarse.pushes < got.pushes and coarse.vertices.size < n  # local, cheaper


def test_isolated_seed_and_workspace_reuse() -> None:
    edges, weights = [(0, 1), (1, 2)], [1.0, 1.0]
    walk = walk_graph(*_csr(4, edges, weights))  # vertex 3 has no edges
    ws = PushWorkspace(4)
    first = local_pagerank(walk, [3], [1.0], damping=0.5, eps=1e-9, workspace=ws)
    assert first.vertices.tolist() == [3] and first.scores.tolist() == [0.5]
    assert first.residual == 0.0
    again = local_pagerank(walk, [0], [1.0], damping=0.5, eps=1e-9, workspace=ws)
    assert 3 not in again.vertices.tolist()  # the workspace was left clean
    assert not ws.p.any() and not ws.r.any() and not ws.touched_mark.any()
    with pytest.raises(ValueError, match="out of range"):
        local_pagerank(walk, [4], [1.0])
    with pytest.raises(ValueError, match="positive"):
        local_pagerank(walk, [0], [0.0])
    with pytest.raises(ValueError, match="another size"):
        local_pagerank(walk, [0], [1.0], workspace=PushWorkspace(5))


def test_eliminating_customers_is_exact_on_the_kept_vertices() -> None:
    # Customers 0..59, products 60..79, categories 80..83; customers touch products only.
    rng = np.random.default_rng(12)
    edges, weights = [], []
    for c in range(60):
        for p in rng.choice(20, int(rng.integers(1, 5)), replace=False).tolist():
            edges.append((c, 60 + p))
            weights.append(float(rng.uniform(0.5, 2.0)))
    for p in range(20):
        edges.append((60 + p, 80 + p % 4))
        weights.append(0.5)
    edges += [(60, 61), (62, 62)]  # a complement pair and a product self-loop
    weights += [2.0, 1.0]
    csr = _csr(84, edges, weights)
    seeds = np.array([60, 65, 70])
    reset = np.zeros(84)
    reset[seeds] = [1.0, 2.0, 0.5]
    exact, _ = personalized_pagerank(walk_graph(*csr), reset, damping=0.5, tol=1e-14)
    folded = eliminate_vertices(*csr, eliminated=np.arange(60), damping=0.5)
    got = local_pagerank(folded, seeds, reset[seeds], damping=0.5, eps=1e-13)
    approx = _dense(84, got.vertices, got.scores)
    np.testing.assert_allclose(approx[60:], exact[60:], atol=1e-11)
    assert not approx[:60].any()  # eliminated vertices hold no estimate
    assert got.vertices.size <= 24  # only products and categories are touched
    with pytest.raises(ValueError, match="must not share an edge"):
        eliminate_vertices(*csr, eliminated=np.arange(61), damping=0.5)
