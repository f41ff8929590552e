"""Local personalized PageRank by forward push (Andersen, Chung, Lang, FOCS 2006).

Same walk as `kernels.pagerank` (the `WalkGraph` layout it prepares): restart with
probability 1 - damping into the seeds, otherwise follow an edge in proportion to its
weight; a self-loop keeps the walker where it is. Instead of sweeping whole
components, push keeps an estimate p and a residual r (both 0 except r = seeds at
the start) and repeatedly takes a vertex u with r_u > eps * strength_u:

    p_u += (1 - d) r_u;  every neighbour v gets d r_u w_uv / strength_u;  r_u = 0

(the self-loop share goes back into r_u). The invariant ppr = p + sum_u r_u ppr(u)
holds throughout, so p is a lower bound of the exact scores, sum(ppr - p) =
sum(r) (the returned `residual`) and, when it stops, r_v <= eps * strength_v for
every v. Each push retires at least (1 - d) eps strength_u of residual while it
touches deg(u) <= strength_u / w_min edges, so the work is O(1 / ((1 - d) eps w_min))
whatever the graph's size: a hub (a category with 10^5 products) is pushed only once
its residual is large relative to its strength. A vertex with no edges keeps its
(1 - d) share and loses the rest, as the exact kernel's dangling handling implies
after its final normalization.

Only the touched vertices are read back and zeroed, so a per-thread `PushWorkspace`
(arrays of graph size, allocated once) keeps each call local.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

from kernels.pagerank import WalkGraph, walk_graph

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class LocalScores(NamedTuple):
    """Vertices (caller's numbering) that received mass, their estimates (a lower bound
    of the exact PPR, not normalized), the residual mass left unpushed, and the pushes."""

    vertices: IntArray
    scores: FloatArray
    residual: float
    pushes: int


class PushWorkspace:
    """Scratch arrays of one graph's size; zero between calls (the kernel cleans up)."""

    def __init__(self, n: int) -> None:
        self.p = np.zeros(n, dtype=np.float64)
        self.r = np.zeros(n, dtype=np.float64)
        self.queued = np.zeros(n, dtype=np.bool_)
        self.touched_mark = np.zeros(n, dtype=np.bool_)
        self.queue = np.empty(n, dtype=np.int64)
        self.touched = np.empty(n, dtype=np.int64)


@njit(cache=True)
def _push(indptr: IntArray, indices: npt.NDArray[np.int32], weights: npt.NDArray[np.float32]
          | FloatArray, strength: FloatArray, self_loop: FloatArray, seeds: IntArray,
          seed_mass: FloatArray, damping: float, eps: float, max_pushes: int,
          p: FloatArray, r: FloatArray, queued: npt.NDArray[np.bool_],
          touched_mark: npt.NDArray[np.bool_], queue: IntArray,
          touched: IntArray) -> tuple[int, float, int]:
    """FIFO forward push; returns (touched count, residual mass, pushes). The touched
    vertices are touched[:count]; the caller reads p there and zeroes the workspace."""
    n = indptr.shape[0] - 1
    n_touched = 0
    head = 0
    size = 0
    for i in range(seeds.shape[0]):
        s = seeds[i]
        if not touched_mark[s]:
            touched_mark[s] = True
            touched[n_touched] = s
            n_touched += 1
        r[s] += seed_mass[i]
        if not queued[s]:
            queued[s] = True
            queue[(head + size) % n] = s
            size += 1
    pushes = 0
    while size > 0 and pushes < max_pushes:
        u = queue[head]
        head = (head + 1) % n
        size -= 1
        queued[u] = False
        ru = r[u]
        su = strength[u]
        if ru <= eps * su:
            continue
        pushes += 1
        p[u] += (1.0 - damping) * ru
        if su == 0.0:
            r[u] = 0.0  # no edges: the walker's remaining mass restarts (see module doc)
            continue
        spread = damping * ru / su
        r[u] = spread * self_loop[u]
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            r[v] += spread * weights[e]
            if not touched_mark[v]:
                touched_mark[v] = True
                touched[n_touched] = v
                n_touched += 1
            if not queued[v] and r[v] > eps * strength[v]:
                queued[v] = True
                queue[(head + size) % n] = v
                size += 1
        if r[u] > eps * su and not queued[u]:
            queued[u] = True
            queue[(head + size) % n] = u
            size += 1
    residual = 0.0
    for i in range(n_touched):
        residual += r[touched[i]]
    while size > 0:  # only when max_pushes stopped the loop early
        queued[queue[head]] = False
        head = (head + 1) % n
        size -= 1
    return n_touched, residual, pushes


_local = threading.local()


def _workspace(n: int) -> PushWorkspace:
    """This thread's workspace for graphs of n vertices (it depends on nothing else)."""
    ws: PushWorkspace | None = getattr(_local, "workspace", None)
    if ws is None or ws.p.shape[0] != n:
        ws = _local.workspace = PushWorkspace(n)
    return ws


def local_pagerank(walk: WalkGraph, seeds: npt.ArrayLike, seed_weights: npt.ArrayLike,
                   damping: float = 0.85, eps: float = 1e-6, max_pushes: int = 10_000_000,
                   workspace: PushWorkspace | None = None) -> LocalScores:
    """Approximate PPR from `seeds` (caller's vertex numbers) with positive weights
    (normalized here), to residual <= eps * strength at every vertex."""
    n = walk.indptr.shape[0] - 1
    s = np.ascontiguousarray(seeds, dtype=np.int64)
    sw = np.ascontiguousarray(seed_weights, dtype=np.float64)
    if s.ndim != 1 or sw.shape != s.shape or s.size == 0:
        raise ValueError("seeds and seed_weights must be 1-D, non-empty, of the same length")
    if int(s.min()) < 0 or int(s.max()) >= n:
        raise ValueError("seed vertex out of range")
    if not np.all(np.isfinite(sw)) or float(sw.min()) <= 0.0:
        raise ValueError("seed_weights must be finite and positive")
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must be in (0, 1), got {damping}")
    if not eps > 0.0 or max_pushes < 1:
        raise ValueError("eps must be > 0 and max_pushes >= 1")
    ws = workspace if workspace is not None else _workspace(n)
    if ws.p.shape[0] != n:
        raise ValueError("workspace was made for a graph of another size")
    count, residual, pushes = _push(
        walk.indptr, walk.indices, walk.weights, walk.strength, walk.self_loop,
        walk.rank[s], sw / float(sw.sum()), float(damping), float(eps), int(max_pushes),
        ws.p, ws.r, ws.queued, ws.touched_mark, ws.queue, ws.touched)
    where = ws.touched[:count].copy()
    values = ws.p[where]
    ws.p[where] = 0.0
    ws.r[where] = 0.0
    ws.touched_mark[where] = False
    keep = values > 0.0
    return LocalScores(walk.order[where[keep]], values[keep], float(residual), int(pushes))


@njit(cache=True)
def _two_hop(indptr: IntArray, indices: npt.NDArray[np.int32], weights: FloatArray,
             strength: FloatArray, eliminated: IntArray, damping: float, total: int
             ) -> tuple[IntArray, IntArray, FloatArray]:
    """For each eliminated vertex c and each pair (a, b) of its neighbours, the entry
    damping * w_ac * w_cb / strength_c (a == b included: a self-loop)."""
    rows = np.empty(total, dtype=np.int64)
    cols = np.empty(total, dtype=np.int64)
    vals = np.empty(total, dtype=np.float64)
    k = 0
    for c in eliminated:
        lo, hi = indptr[c], indptr[c + 1]
        for e in range(lo, hi):
            for f in range(lo, hi):
                rows[k] = indices[e]
                cols[k] = indices[f]
                vals[k] = damping * weights[e] * weights[f] / strength[c]
                k += 1
    return rows, cols, vals


def eliminate_vertices(indptr: npt.ArrayLike, indices: npt.ArrayLike, weights: npt.ArrayLike,
                       eliminated: npt.ArrayLike, damping: float) -> WalkGraph:
    """A walk layout for `local_pagerank` in which the `eliminated` vertices (an
    independent set without self-loops, e.g. the customers of a customer-product
    graph) are folded into their neighbours: two steps a -> c -> b through an
    eliminated c become one edge of weight damping * w_ac * w_cb / strength_c, and
    every vertex keeps its original strength. A walk step then moves d * w / strength,
    and through c it moves d * (d w_ac w_cb / s_c) / s_a = d^2 P_ac P_cb: the
    elimination is exact, so push on this layout computes the same scores on the kept
    vertices as on the whole graph, while its cost depends only on the kept part (the
    catalogue), not on the number of customers. For `local_pagerank` only: the exact
    kernel needs strength = row sums.
    """
    if not 0.0 < damping < 1.0:
        raise ValueError(f"damping must be in (0, 1), got {damping}")
    full = walk_graph(indptr, indices, weights)  # validates the CSR
    ip = np.ascontiguousarray(indptr, dtype=np.int64)
    ix = np.ascontiguousarray(indices, dtype=np.int32)
    w = np.ascontiguousarray(weights, dtype=np.float64)
    n = ip.shape[0] - 1
    gone = np.zeros(n, dtype=np.bool_)
    elim = np.unique(np.asarray(eliminated, dtype=np.int64))
    if elim.size and (int(elim[0]) < 0 or int(elim[-1]) >= n):
        raise ValueError("eliminated vertex out of range")
    gone[elim] = True
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(ip))
    keep = w > 0.0
    rows, ix, w = rows[keep], ix[keep], w[keep]
    if np.any(gone[rows] & gone[ix]):
        raise ValueError("eliminated vertices must not share an edge or carry a self-loop")
    strength = full.strength[full.rank]  # back to the caller's numbering
    kept_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=kept_ptr[1:])
    deg = np.diff(kept_ptr)[elim]
    a, b, v = _two_hop(kept_ptr, ix, w, strength, elim, float(damping), int((deg**2).sum()))
    direct = ~gone[rows] & ~gone[ix]
    key = np.concatenate([rows[direct] * n + ix[direct], a * n + b])
    uniq, inverse = np.unique(key, return_inverse=True)
    vals = np.bincount(inverse, weights=np.concatenate([w[direct], v]))
    src, dst = uniq // n, uniq % n
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=new_ptr[1:])
    reduced = walk_graph(new_ptr, dst.astype(np.int32), vals)
    return reduced._replace(strength=strength[reduced.order])
