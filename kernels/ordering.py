"""Vertex orderings for the PageRank walk: connected components and the walk order.

The walk order groups each connected component into one contiguous range (largest
component first), so a personalized walk sweeps only the components that hold a seed
and can correct each component's total mass separately. Inside a component, vertices
with a self-loop come first, then the rest by descending degree (hubs first): hub
scores stay in cache, Gauss-Seidel spreads mass from hubs sooner, and runs of equal
degree give the inner loop a trip count the branch predictor learns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

IntArray = npt.NDArray[np.int64]


@njit(cache=True)
def _find(parent: IntArray, v: int) -> int:
    while parent[v] != v:
        parent[v] = parent[parent[v]]  # path halving keeps the trees shallow
        v = parent[v]
    return v


@njit(cache=True)
def _component_labels(indptr: IntArray, indices: npt.NDArray[np.int32]) -> IntArray:
    n = indptr.shape[0] - 1
    parent = np.arange(n)
    for v in range(n):
        for e in range(indptr[v], indptr[v + 1]):
            a = _find(parent, v)
            b = _find(parent, indices[e])
            if a != b:
                # Union towards the smaller root so a label is its component's least vertex.
                if a < b:
                    parent[b] = a
                else:
                    parent[a] = b
    labels = np.empty(n, dtype=np.int64)
    for v in range(n):
        labels[v] = _find(parent, v)
    return labels


def connected_components(indptr: npt.ArrayLike, indices: npt.ArrayLike) -> IntArray:
    """Label of every vertex: the least vertex of its component. The CSR must be
    symmetric (each undirected edge listed in both rows), as the walk requires."""
    ip = np.ascontiguousarray(indptr, dtype=np.int64)
    ix = np.ascontiguousarray(indices, dtype=np.int32)
    if ip.ndim != 1 or ip.shape[0] < 1 or ix.shape != (int(ip[-1]),):
        raise ValueError("indptr must be 1-D and indices must have indptr[-1] entries")
    n = ip.shape[0] - 1
    if ix.shape[0] and (int(ix.min()) < 0 or int(ix.max()) >= n):
        raise ValueError("indices out of range")
    return _component_labels(ip, ix)


def walk_order(labels: npt.ArrayLike, degree: npt.ArrayLike,
               self_loop: npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """(order, comp_ptr): `order[i]` is the vertex placed at walk position i, and
    component j occupies positions comp_ptr[j]:comp_ptr[j + 1].

    Components come largest first (ties: least vertex first); inside one, vertices with
    `self_loop` set come first, then by descending `degree`; remaining ties keep the
    input order, so the result is deterministic.
    """
    lab = np.ascontiguousarray(labels, dtype=np.int64)
    deg = np.ascontiguousarray(degree, dtype=np.int64)
    loop = np.ascontiguousarray(self_loop, dtype=np.bool_)
    n = lab.shape[0]
    if lab.ndim != 1 or deg.shape != (n,) or loop.shape != (n,):
        raise ValueError("labels, degree and self_loop must be 1-D of equal length")
    if n and (int(lab.min()) < 0 or int(lab.max()) >= n):
        raise ValueError("labels must be vertex ids in [0, n)")
    size = np.bincount(lab, minlength=n)
    # Rank components by (size desc, label asc); labels are distinct per component.
    comp_order = np.lexsort((np.arange(n), -size))
    comp_order = comp_order[size[comp_order] > 0]
    comp_rank = np.empty(n, dtype=np.int64)
    comp_rank[comp_order] = np.arange(comp_order.shape[0])
    order = np.lexsort((np.arange(n), -deg, ~loop, comp_rank[lab])).astype(np.int64)
    comp_ptr = np.zeros(comp_order.shape[0] + 1, dtype=np.int64)
    np.cumsum(size[comp_order], out=comp_ptr[1:])
    return order, comp_ptr
