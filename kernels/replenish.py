"""Replenishment due scores: how "due" a consumable is for a re-buy right now.

For an item last bought at t with a cadence of c days, r = (now - t) / c is the
fraction of the cycle elapsed. The score is a bell around r = 1 (exactly due),
narrower before the due date than after it: a re-buy stays likely for a while once
overdue, while an item bought last week is not due yet. Items without a purchase
(t = NaN) or without a cadence (c <= 0) score 0.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]


@njit(cache=True)
def _replenish(
    last_purchase: FloatArray, cadence_days: FloatArray, now: float, spread: float
) -> FloatArray:
    out = np.zeros(last_purchase.shape[0], dtype=np.float64)
    for i in range(last_purchase.shape[0]):
        t = last_purchase[i]
        c = cadence_days[i]
        if np.isnan(t) or c <= 0.0:
            continue
        r = (now - t) / c
        if r < 0.0:
            continue
        width = spread if r <= 1.0 else 2.0 * spread
        z = (r - 1.0) / width
        out[i] = np.exp(-0.5 * z * z)
    return out


def replenishment_scores(
    last_purchase: npt.ArrayLike,
    cadence_days: npt.ArrayLike,
    now: float,
    spread: float = 0.25,
) -> FloatArray:
    """Score in [0, 1] per item; 1 when exactly one cadence has passed since `last_purchase`.

    `last_purchase` and `now` are in days on one clock (NaN = never bought).
    """
    t = np.ascontiguousarray(last_purchase, dtype=np.float64)
    c = np.ascontiguousarray(cadence_days, dtype=np.float64)
    if t.ndim != 1 or c.shape != t.shape:
        raise ValueError("last_purchase and cadence_days must be 1-D of the same length")
    if not spread > 0.0:
        raise ValueError("spread must be positive")
    if not np.isfinite(now):
        raise ValueError("now must be finite")
    return _replenish(t, c, float(now), float(spread))
