"""Recency-decayed item-item co-purchase scores from per-customer purchase arrays.

Inputs are two CSR views of the same (customer, item, last purchase time) triples,
one entry per distinct pair: by customer (`cust_*`) and by item (`item_*`). For seed
items s with weights w_s, the score of item j is

    sum_s w_s * sum_{c bought s and j, c != exclude} 0.5 ** ((now - max(t_cs, t_cj)) / h)

so a co-purchase counts as much as its more recent half and fades with half-life h
days (optionally over only the first `max_buyers` buyers of each seed's row); h <= 0
disables decay (plain co-occurrence counts, as in item-kNN). For
explanations ("often bought with X") it also returns, per item, the position of the
seed that contributed most (-1 when none did; the first seed wins ties).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def _copurchase(
    seeds: npt.NDArray[np.int64],
    seed_weights: FloatArray,
    cust_indptr: npt.NDArray[np.int64],
    cust_items: npt.NDArray[np.int32],
    cust_times: FloatArray,
    item_indptr: npt.NDArray[np.int64],
    item_customers: npt.NDArray[np.int32],
    item_times: FloatArray,
    now: float,
    half_life: float,
    exclude_customer: int,
    max_buyers: int,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    n_items = item_indptr.shape[0] - 1
    out = np.zeros(n_items, dtype=np.float64)
    best = np.full(n_items, -1, dtype=np.int64)
    best_val = np.zeros(n_items, dtype=np.float64)
    part = np.zeros(n_items, dtype=np.float64)  # this seed's contribution
    touched = np.empty(n_items, dtype=np.int64)
    mark = np.full(n_items, -1, dtype=np.int64)  # last seed position that touched j
    rate = np.log(2.0) / half_life if half_life > 0.0 else 0.0
    for k in range(seeds.shape[0]):
        s = seeds[k]
        ws = seed_weights[k]
        n_touched = 0
        stop = item_indptr[s + 1]
        if max_buyers > 0:
            stop = min(stop, item_indptr[s] + max_buyers)
        for a in range(item_indptr[s], stop):
            c = item_customers[a]
            if c == exclude_customer:
                continue
            t_s = item_times[a]
            for b in range(cust_indptr[c], cust_indptr[c + 1]):
                j = cust_items[b]
                if j == s:
                    continue
                t = max(t_s, cust_times[b])
                age = now - t
                if age < 0.0:
                    age = 0.0
                if mark[j] != k:
                    mark[j] = k
                    touched[n_touched] = j
                    n_touched += 1
                part[j] += ws * np.exp(-rate * age)
        for a in range(n_touched):
            j = touched[a]
            out[j] += part[j]
            if part[j] > best_val[j]:
                best_val[j] = part[j]
                best[j] = k
            part[j] = 0.0
    return out, best


class PurchaseViews(NamedTuple):
    """The two CSR views, validated and cast once (`purchase_views`)."""

    cust_indptr: npt.NDArray[np.int64]
    cust_items: npt.NDArray[np.int32]
    cust_times: FloatArray
    item_indptr: npt.NDArray[np.int64]
    item_customers: npt.NDArray[np.int32]
    item_times: FloatArray


def purchase_views(
    cust_indptr: npt.ArrayLike,
    cust_items: npt.ArrayLike,
    cust_times: npt.ArrayLike,
    item_indptr: npt.ArrayLike,
    item_customers: npt.ArrayLike,
    item_times: npt.ArrayLike,
) -> PurchaseViews:
    """Check the views once (shapes, ranges: O(entries)) so each call need not."""
    cip = np.ascontiguousarray(cust_indptr, dtype=np.int64)
    cit = np.ascontiguousarray(cust_items, dtype=np.int32)
    ctm = np.ascontiguousarray(cust_times, dtype=np.float64)
    iip = np.ascontiguousarray(item_indptr, dtype=np.int64)
    icu = np.ascontiguousarray(item_customers, dtype=np.int32)
    itm = np.ascontiguousarray(item_times, dtype=np.float64)
    n_cust, n_items = cip.shape[0] - 1, iip.shape[0] - 1
    if n_cust < 0 or n_items < 0:
        raise ValueError("indptr arrays must have at least one entry")
    nnz = int(cip[-1])
    if cit.shape != (nnz,) or ctm.shape != (nnz,):
        raise ValueError("cust_items/cust_times must have cust_indptr[-1] entries")
    if int(iip[-1]) != nnz or icu.shape != (nnz,) or itm.shape != (nnz,):
        raise ValueError("item view must hold the same number of entries as the customer view")
    if nnz and (int(cit.min()) < 0 or int(cit.max()) >= n_items):
        raise ValueError("cust_items out of range")
    if nnz and (int(icu.min()) < 0 or int(icu.max()) >= n_cust):
        raise ValueError("item_customers out of range")
    return PurchaseViews(cip, cit, ctm, iip, icu, itm)


def copurchase_from_views(
    seeds: npt.ArrayLike,
    seed_weights: npt.ArrayLike,
    views: PurchaseViews,
    now: float,
    half_life_days: float = 180.0,
    exclude_customer: int = -1,
    max_buyers: int = 0,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """`copurchase_scores` over views checked by `purchase_views` (only the seeds are
    checked here)."""
    s = np.ascontiguousarray(seeds, dtype=np.int64)
    sw = np.ascontiguousarray(seed_weights, dtype=np.float64)
    if s.ndim != 1 or sw.shape != s.shape:
        raise ValueError("seeds and seed_weights must be 1-D of the same length")
    if sw.size and (not np.all(np.isfinite(sw)) or float(sw.min()) <= 0.0):
        raise ValueError("seed_weights must be finite and positive")
    if s.size and (int(s.min()) < 0 or int(s.max()) >= views.item_indptr.shape[0] - 1):
        raise ValueError("seed item out of range")
    return _copurchase(s, sw, *views, float(now), float(half_life_days),
                       int(exclude_customer), int(max_buyers))


def copurchase_scores(
    seeds: npt.ArrayLike,
    seed_weights: npt.ArrayLike,
    cust_indptr: npt.ArrayLike,
    cust_items: npt.ArrayLike,
    cust_times: npt.ArrayLike,
    item_indptr: npt.ArrayLike,
    item_customers: npt.ArrayLike,
    item_times: npt.ArrayLike,
    now: float,
    half_life_days: float = 180.0,
    exclude_customer: int = -1,
    max_buyers: int = 0,
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(score per item, position in `seeds` of the top contributor per item or -1).

    Times are in days on any common clock; `exclude_customer` (customer index, -1 for
    none) leaves the asking customer's own basket out of the evidence. `max_buyers` > 0
    reads only the first that many entries of each seed's item-view row (the caller
    orders them, e.g. most recent buyer first), so a best-seller's cost is bounded.
    """
    views = purchase_views(cust_indptr, cust_items, cust_times, item_indptr, item_customers,
                           item_times)
    return copurchase_from_views(seeds, seed_weights, views, now, half_life_days,
                                 exclude_customer, max_buyers)
