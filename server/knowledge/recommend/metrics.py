"""Top-10 metrics under the two evaluation protocols (and the served one the tuner
uses), batched over customers, with bootstrap intervals.

A protocol decides which held-out products count and which products no method may
rank, the same for every method:

- `cross-sell`: only products the customer never bought count; owned, returned and
  out-of-stock products are masked;
- `next-basket`: every product of the held-out order counts (repeats allowed);
  returned and out-of-stock products are masked;
- `served`: what Recommend serves: owned non-consumables, returned and out-of-stock
  products are masked, and count only the held-out products not masked.

Ranking: score descending, ties by lower index, only scores > 0 (a method that has
nothing to say about a product does not fill its list with it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from kernels.topk import top_k_rows as kernel_top_k_rows
from server.knowledge.recommend.purchases import PurchaseHistory

K = 10
PROTOCOLS = ("cross-sell", "next-basket")
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


def protocol_mask(history: PurchaseHistory, c: int, protocol: str) -> BoolArray:
    """Products that customer index c may not be shown under `protocol`."""
    out = ~history.in_stock | history.returned_mask(c)
    if protocol == "cross-sell":
        return out | history.owned(c)
    if protocol == "served":
        return out | (history.owned(c) & ~history.consumable)
    if protocol == "next-basket":
        return out
    raise ValueError(f"unknown protocol {protocol!r}")


def relevant_row(history: PurchaseHistory, products: Sequence[str] | frozenset[str],
                 mask: BoolArray) -> BoolArray:
    """Held-out products (known to the history) that the protocol counts."""
    out = np.zeros(history.n_items, dtype=np.bool_)
    out[[history.pindex[p] for p in products if p in history.pindex]] = True
    return out & ~mask


def top_k_rows(scores: npt.NDArray[np.floating], mask: BoolArray, k: int = K
               ) -> tuple[npt.NDArray[np.int64], BoolArray]:
    """Per row, the k best unmasked positive-score columns (ties: lower index) and
    whether each slot holds one (rows may have fewer than k)."""
    idx = kernel_top_k_rows(scores, k, mask, min_score=0.0)
    valid = idx >= 0
    return np.where(valid, idx, 0), valid


def per_customer(scores: npt.NDArray[np.floating], mask: BoolArray, relevant: BoolArray,
                 k: int = K) -> dict[str, FloatArray]:
    """hit, ndcg and recall at k per row (rows without a relevant product are the
    caller's to drop)."""
    idx, valid = top_k_rows(scores, mask, k)
    hit_at = np.take_along_axis(relevant, idx, axis=1) & valid
    kk = max(idx.shape[1], 1)
    discounts = 1.0 / np.log2(np.arange(2, kk + 2))
    n_rel = relevant.sum(axis=1)
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_rel, kk) - 1, 0, kk - 1)]
    dcg = (hit_at * discounts[: idx.shape[1]]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ndcg: FloatArray = np.where(n_rel > 0, dcg / ideal, 0.0)
        recall: FloatArray = np.where(n_rel > 0, hit_at.sum(axis=1) / n_rel, 0.0)
    hit: FloatArray = np.asarray(hit_at.any(axis=1), dtype=np.float64)
    return {"hit_rate_at_10": hit, "ndcg_at_10": ndcg,
            "recall_at_10": recall}


def summarize(rows: dict[str, FloatArray], boot: int = 1000, seed: int = 0
              ) -> dict[str, float | list[float]]:
    """Means, and 95% percentile-bootstrap intervals over customers (`*_ci`)."""
    out: dict[str, float | list[float]] = {}
    rng = np.random.default_rng(seed)
    n = next(iter(rows.values())).shape[0]
    draws = rng.integers(0, n, size=(boot, n)) if boot and n else None
    for name, values in rows.items():
        out[name] = round(float(values.mean()), 4) if n else 0.0
        if draws is not None:
            means = values[draws].mean(axis=1)
            lo, hi = np.percentile(means, [2.5, 97.5])
            out[f"{name}_ci"] = [round(float(lo), 4), round(float(hi), 4)]
    return out
