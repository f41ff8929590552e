"""Top-k selection of products that excludes owned, returned and out-of-stock ones.

Order: score descending, ties by lower index (deterministic). Only scores strictly
above `min_score` qualify, so callers can drop items no signal reached.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@njit(cache=True)
def _worse(sa: float, ia: int, sb: float, ib: int) -> bool:
    # "a ranks below b": lower score, or equal score and higher index.
    return sa < sb or (sa == sb and ia > ib)


@njit(cache=True)
def _top_k(
    scores: FloatArray,
    k: int,
    owned: BoolArray,
    returned: BoolArray,
    out_of_stock: BoolArray,
    min_score: float,
) -> npt.NDArray[np.int64]:
    # A size-k heap whose root is the worst kept candidate.
    heap_s = np.empty(k, dtype=np.float64)
    heap_i = np.empty(k, dtype=np.int64)
    size = 0
    for i in range(scores.shape[0]):
        s = scores[i]
        if owned[i] or returned[i] or out_of_stock[i] or not s > min_score:
            continue
        if size < k:
            pos = size
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if _worse(s, i, heap_s[parent], heap_i[parent]):
                    heap_s[pos] = heap_s[parent]
                    heap_i[pos] = heap_i[parent]
                    pos = parent
                else:
                    break
            heap_s[pos] = s
            heap_i[pos] = i
        elif _worse(heap_s[0], heap_i[0], s, i):
            pos = 0
            while True:
                child = 2 * pos + 1
                if child >= size:
                    break
                if child + 1 < size and _worse(
                    heap_s[child + 1], heap_i[child + 1], heap_s[child], heap_i[child]
                ):
                    child += 1
                if _worse(heap_s[child], heap_i[child], s, i):
                    heap_s[pos] = heap_s[child]
                    heap_i[pos] = heap_i[child]
                    pos = child
                else:
                    break
            heap_s[pos] = s
            heap_i[pos] = i
    # Sort the kept candidates best first (k is small: insertion sort).
    out_s = heap_s[:size].copy()
    out_i = heap_i[:size].copy()
    for a in range(1, size):
        sa, ia = out_s[a], out_i[a]
        b = a - 1
        while b >= 0 and _worse(out_s[b], out_i[b], sa, ia):
            out_s[b + 1] = out_s[b]
            out_i[b + 1] = out_i[b]
            b -= 1
        out_s[b + 1] = sa
        out_i[b + 1] = ia
    return out_i


def top_k_excluding(
    scores: npt.ArrayLike,
    k: int,
    owned: npt.ArrayLike | None = None,
    returned: npt.ArrayLike | None = None,
    out_of_stock: npt.ArrayLike | None = None,
    min_score: float = -np.inf,
) -> npt.NDArray[np.int64]:
    """Indices of the best `k` scores whose masks are all False, best first."""
    s = np.ascontiguousarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError("scores must be 1-D")
    if k < 0:
        raise ValueError("k must be >= 0")
    masks = [_mask(m, s.shape[0], name) for m, name in (
        (owned, "owned"), (returned, "returned"), (out_of_stock, "out_of_stock"))]
    return _top_k(s, int(min(k, s.shape[0])), masks[0], masks[1], masks[2], float(min_score))


def _mask(m: npt.ArrayLike | None, n: int, name: str) -> BoolArray:
    if m is None:
        return np.zeros(n, dtype=np.bool_)
    arr = np.asarray(m)
    if arr.dtype != np.bool_:
        raise ValueError(f"{name} must be a bool array, got {arr.dtype}")
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    return np.ascontiguousarray(arr)


@njit(cache=True)
def _top_k_rows(scores: npt.NDArray[np.float64], k: int, excluded: npt.NDArray[np.bool_],
                min_score: float) -> npt.NDArray[np.int64]:
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    none = np.zeros(scores.shape[1], dtype=np.bool_)
    for r in range(scores.shape[0]):
        picked = _top_k(scores[r], k, excluded[r], none, none, min_score)
        out[r, : picked.shape[0]] = picked
    return out


def top_k_rows(
    scores: npt.ArrayLike, k: int, excluded: npt.ArrayLike, min_score: float = -np.inf
) -> npt.NDArray[np.int64]:
    """`top_k_excluding` for each row of a (requests x items) matrix with a matching
    bool mask; rows with fewer than k candidates are padded with -1."""
    s = np.ascontiguousarray(scores, dtype=np.float64)
    m = np.ascontiguousarray(excluded)
    if s.ndim != 2:
        raise ValueError("scores must be 2-D")
    if m.dtype != np.bool_ or m.shape != s.shape:
        raise ValueError(f"excluded must be a bool array of shape {s.shape}")
    if k < 0:
        raise ValueError("k must be >= 0")
    return _top_k_rows(s, int(min(k, s.shape[1])), m, float(min_score))
