"""Purchase history of one snapshot as arrays: what the recommender, its baselines and
its tuner read (purchase events per customer, distinct (customer, item) views,
popularity, returns). Cancelled orders are left out.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt

from server.errors import NotFound
from server.knowledge.shop.schema import Snapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
SECONDS_PER_DAY = 86400.0


def days(ts: datetime) -> float:
    return ts.timestamp() / SECONDS_PER_DAY


class PurchaseHistory:
    """Index = position in snapshot.products / snapshot.customers."""

    def __init__(self, snap: Snapshot, as_of: datetime) -> None:
        self.as_of = as_of
        self.product_ids = [p.product_id for p in snap.products]
        self.pindex = {p: i for i, p in enumerate(self.product_ids)}
        self.cindex = {c.customer_id: i for i, c in enumerate(snap.customers)}
        self.n_items, self.n_customers = len(self.product_ids), len(self.cindex)
        self.in_stock = np.array([p.in_stock for p in snap.products], dtype=np.bool_)
        self.cadence = np.array([p.replenish_days for p in snap.products], dtype=np.float64)
        self.consumable = self.cadence > 0
        orders = {o.order_id: o for o in snap.orders if o.status != "cancelled"}
        rows = [(self.cindex[o.customer_id], self.pindex[it.product_id], days(o.ordered_at))
                for it in snap.order_items
                if (o := orders.get(it.order_id)) is not None
                and o.customer_id in self.cindex and it.product_id in self.pindex]
        ev = np.array(rows, dtype=np.float64).reshape(-1, 3)
        cust, item, t = ev[:, 0].astype(np.int64), ev[:, 1].astype(np.int64), ev[:, 2]
        order = np.lexsort((t, item, cust))
        cust, item, t = cust[order], item[order], t[order]
        n_cust, n_items = self.n_customers, self.n_items
        # Every purchase event, by customer (for seeds, frequencies and cadences).
        self.ev_indptr = np.zeros(n_cust + 1, dtype=np.int64)
        np.cumsum(np.bincount(cust, minlength=n_cust), out=self.ev_indptr[1:])
        self.ev_item, self.ev_time = item, t
        # One entry per distinct (customer, item) with the last time, in both views.
        last = np.ones(cust.shape[0], dtype=np.bool_)
        last[:-1] = (cust[1:] != cust[:-1]) | (item[1:] != item[:-1])
        dc, di, dt = cust[last], item[last], t[last]
        self.cust_indptr = np.zeros(n_cust + 1, dtype=np.int64)
        np.cumsum(np.bincount(dc, minlength=n_cust), out=self.cust_indptr[1:])
        self.cust_items, self.cust_times = di.astype(np.int32), dt
        # Within an item, the most recent buyer first (co-purchase reads a bounded prefix).
        by_item = np.lexsort((-dt, di))
        self.item_indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(di, minlength=n_items), out=self.item_indptr[1:])
        self.item_customers = dc[by_item].astype(np.int32)
        self.item_times = dt[by_item]
        self.popularity = np.bincount(di, minlength=n_items).astype(np.float64)
        self._recent: dict[float, FloatArray] = {}
        self.returned: dict[int, set[int]] = {}
        for r in snap.returns:
            o = orders.get(r.order_id)
            if o is not None and o.customer_id in self.cindex and r.product_id in self.pindex:
                self.returned.setdefault(self.cindex[o.customer_id], set()).add(
                    self.pindex[r.product_id])

    def views(self) -> tuple[IntArray, npt.NDArray[np.int32], FloatArray, IntArray,
                             npt.NDArray[np.int32], FloatArray]:
        """The (customer, item, last day) views `kernels.copurchase` takes."""
        return (self.cust_indptr, self.cust_items, self.cust_times, self.item_indptr,
                self.item_customers, self.item_times)

    def customer(self, customer_id: str) -> int:
        try:
            return self.cindex[customer_id]
        except KeyError:
            raise NotFound(f"unknown customer {customer_id!r}") from None

    def events(self, c: int) -> tuple[IntArray, FloatArray]:
        """Items and days of every purchase of customer index c (sorted by item, time)."""
        a, b = self.ev_indptr[c], self.ev_indptr[c + 1]
        return self.ev_item[a:b], self.ev_time[a:b]

    def frequency(self, c: int) -> FloatArray:
        """How often customer c bought each item (purchase events, not quantities)."""
        return np.bincount(self.events(c)[0], minlength=self.n_items).astype(np.float64)

    def recent_popularity(self, half_life_days: float) -> FloatArray:
        """Purchases per item, each weighted 0.5 ** (age / half-life) at `as_of`;
        half-life <= 0 gives distinct buyers (all-time popularity)."""
        if half_life_days <= 0:
            return self.popularity
        if half_life_days not in self._recent:
            age = np.maximum(days(self.as_of) - self.ev_time, 0.0)
            self._recent[half_life_days] = np.bincount(
                self.ev_item, weights=0.5 ** (age / half_life_days),
                minlength=self.n_items).astype(np.float64)
        return self._recent[half_life_days]

    def owned(self, c: int) -> npt.NDArray[np.bool_]:
        out = np.zeros(self.n_items, dtype=np.bool_)
        out[self.events(c)[0]] = True
        return out

    def returned_mask(self, c: int) -> npt.NDArray[np.bool_]:
        out = np.zeros(self.n_items, dtype=np.bool_)
        out[list(self.returned.get(c, ()))] = True
        return out
