"""Naive pure-Python / numpy references for every kernel in kernels/ (slow, obvious)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def pagerank(
    n: int,
    edges: list[tuple[int, int]],
    weights: list[float],
    reset: list[float],
    damping: float = 0.85,
    iters: int = 2000,
) -> FloatArray:
    """Dense power iteration on an undirected weighted graph; sinks restart into reset."""
    a = np.zeros((n, n))
    for (u, v), w in zip(edges, weights, strict=True):
        a[u, v] += w
        if u != v:
            a[v, u] += w
    strength = a.sum(axis=1)
    p = np.asarray(reset, dtype=np.float64) / sum(reset)
    x = p.copy()
    for _ in range(iters):
        y = np.zeros(n)
        for u in range(n):
            if strength[u] > 0:
                y += damping * x[u] * a[u] / strength[u]
        dangling = damping * sum(x[u] for u in range(n) if strength[u] == 0)
        x = y + (1 - damping) * p + dangling * p
    return x


def reweight(weights: list[float], types: list[int], type_weights: list[float]) -> list[float]:
    return [w * type_weights[t] for w, t in zip(weights, types, strict=True)]


def copurchase(
    purchases: dict[int, dict[int, float]],
    seeds: list[int],
    seed_weights: list[float],
    n_items: int,
    now: float,
    half_life: float,
    exclude_customer: int = -1,
) -> tuple[list[float], list[int]]:
    """purchases: customer -> {item: last purchase time}; also the top seed per item."""
    out = [0.0] * n_items
    per_seed = []
    for s, ws in zip(seeds, seed_weights, strict=True):
        part = [0.0] * n_items
        for c, basket in purchases.items():
            if c == exclude_customer or s not in basket:
                continue
            for j, t in basket.items():
                if j == s:
                    continue
                age = max(0.0, now - max(basket[s], t))
                decay = 0.5 ** (age / half_life) if half_life > 0 else 1.0
                part[j] += ws * decay
        per_seed.append(part)
        out = [a + b for a, b in zip(out, part, strict=True)]
    best = []
    for j in range(n_items):
        contrib = [p[j] for p in per_seed]
        top = max(contrib, default=0.0)
        best.append(contrib.index(top) if top > 0 else -1)
    return out, best


def replenish(last: list[float], cadence: list[float], now: float, spread: float) -> list[float]:
    out = []
    for t, c in zip(last, cadence, strict=True):
        if math.isnan(t) or c <= 0 or now < t:
            out.append(0.0)
            continue
        r = (now - t) / c
        width = spread if r <= 1 else 2 * spread
        out.append(math.exp(-0.5 * ((r - 1) / width) ** 2))
    return out


def top_k(scores: list[float], k: int, excluded: list[bool], min_score: float) -> list[int]:
    keep = [i for i, s in enumerate(scores) if not excluded[i] and s > min_score]
    return sorted(keep, key=lambda i: (-scores[i], i))[:k]


def cadence(
    groups: list[list[tuple[float, float]]],
    prior: list[float],
    owner: list[int],
    shrink: float,
    min_gap: float = 1.0,
    per_unit: bool = True,
) -> list[tuple[float, float, int, float, float]]:
    """Per group of (day, quantity) purchases: (interval, next gap, observed intervals,
    day of the last purchase occasion, the owner's pace).

    Purchases within `min_gap` of the previous kept one are merged; NaN = no estimate."""
    merged_groups = []
    for events in groups:
        merged: list[list[float]] = []
        for t, q in events:
            if merged and t - merged[-1][0] < min_gap:
                merged[-1][1] += q
            else:
                merged.append([t, q])
        merged_groups.append(merged)
    gaps = [[(b[0] - a[0]) / (a[1] if per_unit else 1.0) for a, b in itertools.pairwise(m)]
            for m in merged_groups]
    logs: dict[int, list[float]] = {}
    for g, o in enumerate(owner):
        if prior[g] > 0:
            logs.setdefault(o, []).extend(math.log(max(v, 1e-3) / prior[g]) for v in gaps[g])
    pace = {o: math.exp(len(v) * float(np.median(v)) / (len(v) + shrink)) if v else 1.0
            for o, v in logs.items()}
    out = []
    for g, merged in enumerate(merged_groups):
        if prior[g] > 0:
            rate = prior[g] * pace.get(owner[g], 1.0)
        elif gaps[g]:
            rate = float(np.median(gaps[g]))
        else:
            rate = math.nan
        last_t, last_q = (merged[-1][0], merged[-1][1]) if merged else (math.nan, 0.0)
        out.append((rate, rate * last_q if per_unit else rate, len(gaps[g]), last_t,
                    pace.get(owner[g], 1.0)))
    return out


def forward_push(
    n: int,
    edges: list[tuple[int, int]],
    weights: list[float],
    seeds: dict[int, float],
    damping: float,
    eps: float,
) -> tuple[list[float], float]:
    """Andersen-Chung-Lang push with a FIFO of dict-based residuals; (p, residual mass)."""
    adj: list[dict[int, float]] = [{} for _ in range(n)]
    for (u, v), w in zip(edges, weights, strict=True):
        adj[u][v] = adj[u].get(v, 0.0) + w
        if u != v:
            adj[v][u] = adj[v].get(u, 0.0) + w
    strength = [sum(a.values()) for a in adj]
    total = sum(seeds.values())
    p = [0.0] * n
    r = [0.0] * n
    for s, w in seeds.items():
        r[s] += w / total
    queue = [s for s in seeds if r[s] > eps * strength[s]]
    while queue:
        u = queue.pop(0)
        if r[u] <= eps * strength[u]:
            continue
        ru, r[u] = r[u], 0.0
        p[u] += (1 - damping) * ru
        for v, w in adj[u].items():
            r[v] += damping * ru * w / strength[u] if strength[u] else 0.0
            if r[v] > eps * strength[v] and v not in queue:
                queue.append(v)
    return p, sum(r)
