"""Edge-type-weighted scoring: re-weight CSR edges by a per-type weight vector.

The knowledge graph stores one weight per edge (purchase count and recency, item
quantity...) and one int8 type code per edge; a walk for a given purpose (recommend,
explain) decides how much each relation counts by a weight per type.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def _reweight(
    weights: FloatArray, edge_types: npt.NDArray[np.int8], type_weights: FloatArray
) -> FloatArray:
    out = np.empty(weights.shape[0], dtype=np.float64)
    for e in range(weights.shape[0]):
        out[e] = weights[e] * type_weights[edge_types[e]]
    return out


@njit(cache=True)
def _neighbour_scores(
    indptr: npt.NDArray[np.int64],
    indices: npt.NDArray[np.int32],
    weights: FloatArray,
    seeds: npt.NDArray[np.int64],
    seed_weights: FloatArray,
) -> FloatArray:
    n = indptr.shape[0] - 1
    out = np.zeros(n, dtype=np.float64)
    for s in range(seeds.shape[0]):
        u = seeds[s]
        for e in range(indptr[u], indptr[u + 1]):
            out[indices[e]] += seed_weights[s] * weights[e]
    return out


def reweight_edges(
    weights: npt.ArrayLike, edge_types: npt.ArrayLike, type_weights: npt.ArrayLike
) -> FloatArray:
    """weights[e] * type_weights[edge_types[e]] for every edge e."""
    w = np.ascontiguousarray(weights, dtype=np.float64)
    t = np.asarray(edge_types)
    tw = np.ascontiguousarray(type_weights, dtype=np.float64)
    if t.dtype != np.int8:
        raise ValueError(f"edge_types must be int8, got {t.dtype}")
    t = np.ascontiguousarray(t)
    if w.ndim != 1 or t.shape != w.shape:
        raise ValueError("weights and edge_types must be 1-D of the same length")
    if tw.ndim != 1 or tw.shape[0] == 0:
        raise ValueError("type_weights must be a non-empty 1-D array")
    if t.size and (int(t.min()) < 0 or int(t.max()) >= tw.shape[0]):
        raise ValueError("edge type code outside type_weights")
    return _reweight(w, t, tw)


def neighbour_scores(
    indptr: npt.ArrayLike,
    indices: npt.ArrayLike,
    weights: npt.ArrayLike,
    seeds: npt.ArrayLike,
    seed_weights: npt.ArrayLike,
) -> FloatArray:
    """One-hop scores: out[v] = sum over seeds s of seed_weights[s] * w(s, v)."""
    ip = np.ascontiguousarray(indptr, dtype=np.int64)
    ix = np.ascontiguousarray(indices, dtype=np.int32)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    s = np.ascontiguousarray(seeds, dtype=np.int64)
    sw = np.ascontiguousarray(seed_weights, dtype=np.float64)
    n = ip.shape[0] - 1
    if ip.ndim != 1 or n < 0 or ix.shape != (int(ip[-1]),) or w.shape != ix.shape:
        raise ValueError("malformed CSR arrays")
    if s.ndim != 1 or sw.shape != s.shape:
        raise ValueError("seeds and seed_weights must be 1-D of the same length")
    if s.size and (int(s.min()) < 0 or int(s.max()) >= n):
        raise ValueError("seed out of range")
    if ix.size and (int(ix.min()) < 0 or int(ix.max()) >= n):
        raise ValueError("indices out of range")
    return _neighbour_scores(ip, ix, w, s, sw)
