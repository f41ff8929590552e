"""Compile every kernel on tiny inputs so the first request never pays JIT time."""

from __future__ import annotations

import time

import numpy as np

from kernels.cadence import cadence_estimates, group_medians, purchase_intervals
from kernels.copurchase import copurchase_scores
from kernels.pagerank import personalized_pagerank, walk_graph
from kernels.push import eliminate_vertices, local_pagerank
from kernels.replenish import replenishment_scores
from kernels.scoring import neighbour_scores, reweight_edges
from kernels.topk import top_k_excluding, top_k_rows


def warmup() -> float:
    """Run each kernel once on a 3-vertex graph; returns the seconds it took."""
    start = time.perf_counter()
    indptr = np.array([0, 1, 3, 4], dtype=np.int64)
    indices = np.array([1, 0, 2, 1], dtype=np.int32)
    weights = np.ones(4, dtype=np.float64)
    types = np.zeros(4, dtype=np.int8)
    w = reweight_edges(weights, types, np.ones(1))
    for wt in (w, w * 0.1):  # float32 storage (exact weights) and float64 storage
        walk = walk_graph(indptr, indices, wt)
        personalized_pagerank(walk, np.array([1.0, 0.0, 0.0]))
        local_pagerank(walk, np.array([0]), np.array([1.0]))
        folded = eliminate_vertices(indptr, indices, wt, np.array([0]), 0.5)
        local_pagerank(folded, np.array([1]), np.array([1.0]))
    neighbour_scores(indptr, indices, w, np.array([0]), np.array([1.0]))
    # Customers 0 and 1 over items 0..2, with the matching item view.
    copurchase_scores(
        np.array([0]), np.array([1.0]),
        np.array([0, 2, 4]), np.array([0, 1, 0, 2]), np.array([0.0, 1.0, 2.0, 3.0]),
        np.array([0, 2, 3, 4]), np.array([0, 1, 0, 1]), np.array([0.0, 2.0, 1.0, 3.0]),
        now=4.0,
    )
    replenishment_scores(np.array([0.0, np.nan]), np.array([30.0, 0.0]), 20.0)
    history = (np.array([0, 2, 3]), np.array([0.0, 30.0, 5.0]), np.array([1.0, 2.0, 1.0]))
    for per_unit in (True, False):
        iv = purchase_intervals(*history, per_unit=per_unit)
        group_medians(iv.indptr, iv.values)
        cadence_estimates(*history, np.array([25.0, 0.0]), np.array([0, 0]), per_unit=per_unit)
    top_k_excluding(np.array([0.5, 0.2, 0.9]), 2, np.zeros(3, dtype=np.bool_))
    top_k_rows(np.array([[0.5, 0.2, 0.9]]), 2, np.zeros((1, 3), dtype=np.bool_))
    return time.perf_counter() - start
