"""Re-buy cadence estimates over purchase histories.

A history is one group of purchase events (one customer x one product), given as
CSR-style `indptr` into `times` (days, ascending inside a group) and `quantities`.
Events closer than `min_gap_days` to the previous kept event are one purchase (their
quantities add up). A gap between two purchases, divided by the quantity bought at its
start when `per_unit` is set, is one observed interval: two packs last about twice as
long as one.

- `purchase_intervals`: every observed interval, grouped like the input.
- `cadence_estimates`: per group, its prior (the product's cadence) at the owner's
  (customer's) pace. The pace pools every interval the owner shows with any product
  that has a prior: with n log-ratios r = log(interval / prior) of median m, the pace
  is exp(n * m / (n + shrink)) (1 with no history: the prior alone). Pooling over
  products keeps the estimate steady where one product's own history is two or three
  noisy gaps. A group without a prior uses its own median interval; with neither it is
  NaN. The predicted next gap is the interval times the last purchase's quantity (per
  unit) or the interval itself.
- `group_medians`: the median of each CSR group of values (NaN when empty).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@njit(cache=True)
def _intervals(indptr: IntArray, times: FloatArray, quantities: FloatArray, min_gap: float,
               per_unit: bool) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    n_groups = indptr.shape[0] - 1
    out_ptr = np.zeros(n_groups + 1, dtype=np.int64)
    values = np.empty(max(times.shape[0], 1), dtype=np.float64)
    last_time = np.full(n_groups, np.nan)
    last_qty = np.zeros(n_groups, dtype=np.float64)
    k = 0
    for g in range(n_groups):
        a, b = indptr[g], indptr[g + 1]
        if b > a:
            t0 = times[a]
            q0 = quantities[a]
            for e in range(a + 1, b):
                if times[e] - t0 < min_gap:
                    q0 += quantities[e]  # same purchase occasion
                    continue
                gap = times[e] - t0
                values[k] = gap / q0 if per_unit else gap
                k += 1
                t0 = times[e]
                q0 = quantities[e]
            last_time[g] = t0
            last_qty[g] = q0
        out_ptr[g + 1] = k
    return out_ptr, values[:k].copy(), last_time, last_qty


@njit(cache=True)
def _medians(indptr: IntArray, values: FloatArray) -> FloatArray:
    n_groups = indptr.shape[0] - 1
    out = np.full(n_groups, np.nan)
    for g in range(n_groups):
        a, b = indptr[g], indptr[g + 1]
        if b > a:
            out[g] = np.median(values[a:b])
    return out


@njit(cache=True)
def _estimates(iv_ptr: IntArray, iv: FloatArray, last_qty: FloatArray, prior: FloatArray,
               owner: IntArray, n_owners: int, shrink: float, per_unit: bool
               ) -> tuple[FloatArray, FloatArray, IntArray, FloatArray]:
    n_groups = iv_ptr.shape[0] - 1
    # Pass 1: every owner's log(interval / prior) over all its groups with a prior.
    counts = np.zeros(n_owners + 1, dtype=np.int64)
    for g in range(n_groups):
        if prior[g] > 0.0:
            counts[owner[g] + 1] += iv_ptr[g + 1] - iv_ptr[g]
    ptr = np.cumsum(counts)
    fill = ptr[:-1].copy()
    ratios = np.empty(max(ptr[-1], 1), dtype=np.float64)
    for g in range(n_groups):
        if prior[g] > 0.0:
            for k in range(iv_ptr[g], iv_ptr[g + 1]):
                ratios[fill[owner[g]]] = np.log(max(iv[k], 1e-3) / prior[g])
                fill[owner[g]] += 1
    factor = np.ones(n_owners, dtype=np.float64)
    for o in range(n_owners):
        n = ptr[o + 1] - ptr[o]
        if n > 0:
            factor[o] = np.exp(n * np.median(ratios[ptr[o]:ptr[o + 1]]) / (n + shrink))
    # Pass 2: per group, the prior at the owner's pace, else the group's own median.
    rate = np.full(n_groups, np.nan)
    nxt = np.full(n_groups, np.nan)
    n_obs = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        a, b = iv_ptr[g], iv_ptr[g + 1]
        n_obs[g] = b - a
        if prior[g] > 0.0:
            rate[g] = prior[g] * factor[owner[g]]
        elif b > a:
            rate[g] = np.median(iv[a:b])
        if not np.isnan(rate[g]):
            nxt[g] = rate[g] * last_qty[g] if per_unit else rate[g]
    return rate, nxt, n_obs, factor


class Intervals(NamedTuple):
    indptr: IntArray  # CSR into values, one group per input group
    values: FloatArray  # days (per unit when per_unit)
    last_time: FloatArray  # the last purchase's day per group (NaN when empty)
    last_quantity: FloatArray  # units bought on that last occasion


class Cadence(NamedTuple):
    interval: FloatArray  # estimated days between purchases (per unit when per_unit)
    next_gap: FloatArray  # predicted days from the last purchase to the next
    observed: IntArray  # intervals the group itself contributed
    last_time: FloatArray
    last_quantity: FloatArray
    pace: FloatArray  # the owner's pace factor per group (1 = the prior's cadence)


def _check(indptr: npt.ArrayLike, times: npt.ArrayLike, quantities: npt.ArrayLike | None,
           min_gap_days: float) -> tuple[IntArray, FloatArray, FloatArray]:
    ptr = np.ascontiguousarray(indptr, dtype=np.int64)
    t = np.ascontiguousarray(times, dtype=np.float64)
    q = (np.ones(t.shape[0]) if quantities is None
         else np.ascontiguousarray(quantities, dtype=np.float64))
    if ptr.ndim != 1 or ptr.shape[0] < 1 or ptr[0] != 0 or ptr[-1] != t.shape[0]:
        raise ValueError("indptr must be 1-D, start at 0 and end at len(times)")
    if np.any(np.diff(ptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    if t.ndim != 1 or q.shape != t.shape:
        raise ValueError("times and quantities must be 1-D of the same length")
    if not np.all(np.isfinite(t)):
        raise ValueError("times must be finite")
    if np.any(q <= 0) or not np.all(np.isfinite(q)):
        raise ValueError("quantities must be positive")
    if t.shape[0] > 1:
        same_group = np.ones(t.shape[0] - 1, dtype=np.bool_)
        same_group[ptr[1:-1][(ptr[1:-1] > 0) & (ptr[1:-1] < t.shape[0])] - 1] = False
        if np.any(np.diff(t)[same_group] < 0):
            raise ValueError("times must be ascending inside each group")
    if not min_gap_days >= 0.0:
        raise ValueError("min_gap_days must be >= 0")
    return ptr, t, q


def purchase_intervals(indptr: npt.ArrayLike, times: npt.ArrayLike,
                       quantities: npt.ArrayLike | None = None, *, min_gap_days: float = 1.0,
                       per_unit: bool = True) -> Intervals:
    """Observed re-buy intervals per group (see the module docstring)."""
    ptr, t, q = _check(indptr, times, quantities, min_gap_days)
    return Intervals(*_intervals(ptr, t, q, float(min_gap_days), bool(per_unit)))


def group_medians(indptr: npt.ArrayLike, values: npt.ArrayLike) -> FloatArray:
    """Median of each CSR group; NaN for an empty group."""
    ptr = np.ascontiguousarray(indptr, dtype=np.int64)
    v = np.ascontiguousarray(values, dtype=np.float64)
    if ptr.ndim != 1 or ptr.shape[0] < 1 or ptr[0] != 0 or ptr[-1] != v.shape[0]:
        raise ValueError("indptr must be 1-D, start at 0 and end at len(values)")
    if np.any(np.diff(ptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    return _medians(ptr, v)


def cadence_estimates(indptr: npt.ArrayLike, times: npt.ArrayLike,
                      quantities: npt.ArrayLike | None = None,
                      prior: npt.ArrayLike | None = None, owner: npt.ArrayLike | None = None,
                      *, shrink: float = 1.0, min_gap_days: float = 1.0,
                      per_unit: bool = True) -> Cadence:
    """Per group: the prior (<= 0 or NaN = none) at the owner's pace (see the module
    docstring); `owner` labels groups 0..n-1 (default: each group its own owner)."""
    ptr, t, q = _check(indptr, times, quantities, min_gap_days)
    n_groups = ptr.shape[0] - 1
    p = (np.zeros(n_groups) if prior is None
         else np.nan_to_num(np.ascontiguousarray(prior, dtype=np.float64), nan=0.0))
    if p.shape != (n_groups,):
        raise ValueError("prior must have one value per group")
    own = (np.arange(n_groups, dtype=np.int64) if owner is None
           else np.ascontiguousarray(owner, dtype=np.int64))
    if own.shape != (n_groups,) or (n_groups and own.min() < 0):
        raise ValueError("owner must hold one label >= 0 per group")
    if not shrink >= 0.0:
        raise ValueError("shrink must be >= 0")
    n_owners = int(own.max()) + 1 if n_groups else 0
    iv = _intervals(ptr, t, q, float(min_gap_days), bool(per_unit))
    rate, nxt, n_obs, factor = _estimates(iv[0], iv[1], iv[3], p, own, n_owners,
                                          float(shrink), bool(per_unit))
    return Cadence(rate, nxt, n_obs, iv[2], iv[3], factor[own] if n_groups else factor)
