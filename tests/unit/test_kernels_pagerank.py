"""The PageRank walk layout (kernels/ordering.py) and the per-component solve: orderings
are permutations that keep components contiguous, and no layout changes the scores."""

from __future__ import annotations

import igraph as ig
import numpy as np
import pytest

from kernels.ordering import connected_components, walk_order
from kernels.pagerank import personalized_pagerank, walk_graph
from tests import naive


def _csr(n: int, edges: list[tuple[int, int]], weights: list[float]):
    src = np.array([u for u, _ in edges] + [v for u, v in edges if u != v], dtype=np.int64)
    dst = np.array([v for _, v in edges] + [u for u, v in edges if u != v], dtype=np.int32)
    w = np.array(weights + [x for (u, v), x in zip(edges, weights, strict=True) if u != v])
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
    return indptr, dst[order], w[order]


def _clusters(n: int, sizes: list[int], seed: int) -> tuple[list[tuple[int, int]], list[float]]:
    """Random connected clusters on consecutive vertex blocks, then shuffled labels; the
    vertices past sum(sizes) stay isolated."""
    rng = np.random.default_rng(seed)
    label = rng.permutation(n)
    edges: set[tuple[int, int]] = set()
    start = 0
    for size in sizes:
        block = list(range(start, start + size))
        for i in range(1, size):  # a random tree keeps the block connected
            u, v = block[i], block[int(rng.integers(0, i))]
            edges.add((min(label[u], label[v]), max(label[u], label[v])))
        for _ in range(2 * size):
            u, v = (int(x) for x in rng.choice(block, 2))
            if u != v:
                edges.add((min(label[u], label[v]), max(label[u], label[v])))
        start += size
    ordered = sorted((int(u), int(v)) for u, v in edges)
    return ordered, [float(x) for x in rng.uniform(0.2, 2.0, len(ordered))]


def test_components_match_igraph() -> None:
    n = 400
    edges, _ = _clusters(n, [150, 120, 60, 2], seed=1)
    indptr, indices, _ = _csr(n, edges, [1.0] * len(edges))
    labels = connected_components(indptr, indices)
    want = ig.Graph(n, edges).connected_components().membership
    # Same partition, and each label is the least vertex of its component.
    pairs = set(zip(labels.tolist(), want, strict=True))
    assert len(pairs) == len(set(want)) == len(set(labels.tolist()))
    for lab in set(labels.tolist()):
        assert lab == int(np.flatnonzero(labels == lab).min())
    with pytest.raises(ValueError, match="out of range"):
        connected_components(indptr, np.full_like(indices, n))


def test_walk_order_is_a_permutation_with_contiguous_components() -> None:
    n = 300
    edges, _ = _clusters(n, [120, 90, 40, 3], seed=2)
    indptr, indices, _ = _csr(n, edges, [1.0] * len(edges))
    labels = connected_components(indptr, indices)
    degree = np.diff(indptr)
    loop = np.zeros(n, dtype=np.bool_)
    loop[[5, 77]] = True
    order, comp_ptr = walk_order(labels, degree, loop)
    assert sorted(order.tolist()) == list(range(n))
    sizes = np.diff(comp_ptr)
    assert comp_ptr[-1] == n and np.all(sizes > 0) and np.all(np.diff(sizes) <= 0)
    assert sizes[:4].tolist() == [120, 90, 40, 3] and np.all(sizes[4:] == 1)
    for j in range(sizes.shape[0]):
        part = order[comp_ptr[j]:comp_ptr[j + 1]]
        assert len(set(labels[part].tolist())) == 1  # one component per range
        assert np.count_nonzero(labels == labels[part[0]]) == part.shape[0]
        key = [(not loop[v], -degree[v], v) for v in part.tolist()]
        assert key == sorted(key)  # self-loops first, then degree desc, then input order
    with pytest.raises(ValueError, match="equal length"):
        walk_order(labels, degree[:-1], loop)


def test_scores_do_not_depend_on_vertex_labels() -> None:
    n = 500
    edges, weights = _clusters(n, [300, 150], seed=3)
    rng = np.random.default_rng(4)
    reset = np.zeros(n)
    reset[rng.choice(n, 6, replace=False)] = rng.uniform(0.5, 2.0, 6)
    got, _ = personalized_pagerank(walk_graph(*_csr(n, edges, weights)), reset, tol=1e-13)
    perm = rng.permutation(n)  # vertex v becomes perm[v]
    moved = [(int(perm[u]), int(perm[v])) for u, v in edges]
    reset_moved = np.zeros(n)
    reset_moved[perm] = reset
    got_moved, _ = personalized_pagerank(walk_graph(*_csr(n, moved, weights)), reset_moved,
                                         tol=1e-13)
    np.testing.assert_allclose(got_moved[perm], got, atol=1e-14, rtol=1e-11)


def test_seeds_in_several_components_match_naive() -> None:
    # Components {0,1,2} (seeded), {3,4} (unseeded), {5} isolated seed, {6} self-loop seed,
    # and a zero-weight edge (2, 3) that must neither carry walk nor join components.
    edges = [(0, 1), (1, 2), (2, 0), (3, 4), (2, 3), (6, 6)]
    weights = [1.0, 2.0, 0.5, 1.5, 0.0, 2.0]
    reset = [1.0, 0.0, 0.5, 0.0, 0.0, 0.25, 0.25]
    walk = walk_graph(*_csr(7, edges, weights))
    assert np.diff(walk.comp_ptr).tolist() == [3, 2, 1, 1]
    got, _ = personalized_pagerank(walk, reset, tol=1e-14, max_iter=500)
    want = naive.pagerank(7, edges, weights, reset)
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert got[3] == 0.0 and got[4] == 0.0  # an unseeded component is never swept


def test_coarse_correction_keeps_sweeps_low() -> None:
    # Without the per-component mass correction, SOR needs 26 sweeps here at its best
    # omega (1.4); losing the correction fails this bound (sweep counts, not timings).
    n = 3000
    rng = np.random.default_rng(8)
    u = rng.integers(0, n, 12000)
    v = rng.integers(0, n, 12000)
    edges = sorted({(int(min(a, b)), int(max(a, b))) for a, b in zip(u, v, strict=True)
                    if a != b})
    weights = [float(x) for x in rng.uniform(0.1, 3.0, len(edges))]
    reset = np.zeros(n)
    reset[rng.choice(n, 5, replace=False)] = 1.0
    walk = walk_graph(*_csr(n, edges, weights))
    want = np.array(ig.Graph(n, edges).personalized_pagerank(reset=reset.tolist(),
                                                             weights=weights))
    got, sweeps = personalized_pagerank(walk, reset, tol=1e-9)
    np.testing.assert_allclose(got, want, atol=1e-10)
    assert sweeps <= 18
