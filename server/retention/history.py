"""Per-customer purchase histories of one snapshot, indexed for the retention kinds.

Built once per snapshot (off the event loop): delivered orders, warranties, order
gaps, and every (customer, consumable) purchase history with its cadence estimate
from `kernels.cadence`: the product's per-unit cadence (the median over all its buyers,
or the catalogue's `replenish_days` where too few buyers re-bought it) at the
customer's own pace (pooled over all the consumables they re-bought), times the units
they bought last.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from kernels.cadence import cadence_estimates, group_medians, purchase_intervals
from server.knowledge.shop.schema import Order, Product, Snapshot, Warranty

SECONDS_PER_DAY = 86400.0
OPEN_REFUND_STATUSES = ("requested", "approved")
MIN_PRODUCT_INTERVALS = 3  # fewer pooled intervals: the catalogue cadence is the prior

FloatArray = npt.NDArray[np.float64]


def to_days(ts: datetime) -> float:
    return ts.timestamp() / SECONDS_PER_DAY


def from_days(days: float) -> datetime:
    return datetime.fromtimestamp(days * SECONDS_PER_DAY, UTC)


@dataclass(frozen=True)
class Consumable:
    """One customer's history with one consumable and its cadence estimate."""

    product_id: str
    last_day: float
    last_order_id: str
    interval_days: float  # per unit
    next_gap_days: float  # predicted from the last purchase (its quantity included)
    pace: float  # the customer's pace against the products' cadences (1 = usual)
    paced: bool  # False: no re-buy history of this customer, the product's cadence alone


@dataclass(frozen=True)
class CustomerHistory:
    customer_id: str
    marketing_opt_in: bool
    orders: list[Order]  # not cancelled, oldest first
    delivered: list[Order]  # newest first
    consumables: list[Consumable]
    warranties: list[Warranty]
    order_gap_days: float  # median gap between orders (NaN with fewer than two)
    open_refunds: list[str]  # order ids with a refund still requested or approved


def product_cadence(snapshot: Snapshot, shrink_min: int = MIN_PRODUCT_INTERVALS,
                    per_unit: bool = True) -> dict[str, float]:
    """Per consumable: the median per-unit interval over all its buyers, or `replenish_days`."""
    groups = purchase_groups(snapshot)
    products = {p.product_id: p for p in snapshot.products}
    iv = purchase_intervals(groups.indptr, groups.times, groups.quantities, per_unit=per_unit)
    by_product: dict[str, list[float]] = defaultdict(list)
    for g, (_, pid) in enumerate(groups.keys):
        by_product[pid].extend(iv.values[iv.indptr[g]:iv.indptr[g + 1]].tolist())
    pids = sorted(by_product)
    ptr = np.concatenate([[0], np.cumsum([len(by_product[p]) for p in pids])]).astype(np.int64)
    flat = np.array([v for p in pids for v in by_product[p]], dtype=np.float64)
    medians = group_medians(ptr, flat)
    position = {pid: i for i, pid in enumerate(pids)}
    out = {}
    for pid in {k[1] for k in groups.keys}:
        i = position.get(pid, -1)
        pooled = i >= 0 and ptr[i + 1] - ptr[i] >= shrink_min
        out[pid] = float(medians[i]) if pooled else float(products[pid].replenish_days)
    return out


@dataclass(frozen=True)
class PurchaseGroups:
    keys: list[tuple[str, str]]  # (customer, product) per group
    indptr: npt.NDArray[np.int64]
    times: FloatArray
    quantities: FloatArray
    order_ids: list[str]  # per event


def purchase_groups(snapshot: Snapshot) -> PurchaseGroups:
    """Every (customer, consumable) purchase history, events ascending in time."""
    consumable = {p.product_id for p in snapshot.products if p.replenish_days > 0}
    orders = {o.order_id: o for o in snapshot.orders if o.status != "cancelled"}
    rows = sorted(
        (o.customer_id, it.product_id, to_days(o.ordered_at), float(it.quantity), o.order_id)
        for it in snapshot.order_items
        if it.product_id in consumable and (o := orders.get(it.order_id)) is not None
    )
    keys: list[tuple[str, str]] = []
    counts: list[int] = []
    for cid, pid, *_ in rows:
        if keys and keys[-1] == (cid, pid):
            counts[-1] += 1
        else:
            keys.append((cid, pid))
            counts.append(1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return PurchaseGroups(keys, indptr, np.array([r[2] for r in rows], dtype=np.float64),
                          np.array([r[3] for r in rows], dtype=np.float64),
                          [r[4] for r in rows])


class RetentionIndex:
    """Read-only histories of one snapshot; `customer(id)` is O(1)."""

    def __init__(self, snapshot: Snapshot, shrink: float = 1.0) -> None:
        self.snapshot_id = snapshot.snapshot_id
        self.shrink = shrink
        self.as_of = snapshot.as_of or max((o.ordered_at for o in snapshot.orders),
                                           default=datetime.now(UTC))
        self.customer_ids = [c.customer_id for c in snapshot.customers]
        self.products: dict[str, Product] = {p.product_id: p for p in snapshot.products}
        self._opt_in = {c.customer_id: c.marketing_opt_in for c in snapshot.customers}
        orders: dict[str, list[Order]] = defaultdict(list)
        for o in snapshot.orders:
            if o.status != "cancelled":
                orders[o.customer_id].append(o)
        for lst in orders.values():
            lst.sort(key=lambda o: (o.ordered_at, o.order_id))
        self._orders = orders
        self._warranties: dict[str, list[Warranty]] = defaultdict(list)
        for w in snapshot.warranties:
            self._warranties[w.customer_id].append(w)
        by_order = {o.order_id: o for o in snapshot.orders}
        self._refunds: dict[str, list[str]] = defaultdict(list)
        for r in snapshot.returns:
            placed = by_order.get(r.order_id)
            if placed is not None and r.refund_status in OPEN_REFUND_STATUSES:
                self._refunds[placed.customer_id].append(r.order_id)
        self._order_gaps = self._gaps()
        self._consumables = self._cadences(snapshot, shrink)

    def _gaps(self) -> dict[str, float]:
        ids = [c for c in self.customer_ids if c in self._orders]
        ptr = np.concatenate([[0], np.cumsum([len(self._orders[c]) for c in ids])]).astype(
            np.int64)
        times = np.array([to_days(o.ordered_at) for c in ids for o in self._orders[c]],
                         dtype=np.float64)
        iv = purchase_intervals(ptr, times, per_unit=False)
        medians = group_medians(iv.indptr, iv.values)
        return {c: float(m) for c, m in zip(ids, medians, strict=True)}

    def _cadences(self, snapshot: Snapshot, shrink: float) -> dict[str, list[Consumable]]:
        groups = purchase_groups(snapshot)
        prior_by_product = product_cadence(snapshot)
        prior = np.array([prior_by_product[pid] for _, pid in groups.keys], dtype=np.float64)
        owners: dict[str, int] = {}
        owner = np.array([owners.setdefault(cid, len(owners)) for cid, _ in groups.keys],
                         dtype=np.int64)
        est = cadence_estimates(groups.indptr, groups.times, groups.quantities, prior, owner,
                                shrink=shrink)
        history = np.bincount(owner, weights=est.observed, minlength=len(owners))
        out: dict[str, list[Consumable]] = defaultdict(list)
        for g, (cid, pid) in enumerate(groups.keys):
            if np.isnan(est.next_gap[g]):
                continue
            # The last event of the group belongs to the last purchase occasion's order.
            last_order = groups.order_ids[int(groups.indptr[g + 1]) - 1]
            out[cid].append(Consumable(pid, float(est.last_time[g]), last_order,
                                       float(est.interval[g]), float(est.next_gap[g]),
                                       float(est.pace[g]), bool(history[owner[g]] > 0)))
        return out

    def has_customer(self, customer_id: str) -> bool:
        return customer_id in self._opt_in

    def customer(self, customer_id: str) -> CustomerHistory:
        orders = self._orders.get(customer_id, [])
        delivered = sorted((o for o in orders if o.delivered_at is not None),
                           key=lambda o: (o.delivered_at, o.order_id), reverse=True)
        return CustomerHistory(
            customer_id=customer_id,
            marketing_opt_in=self._opt_in[customer_id],
            orders=orders,
            delivered=delivered,
            consumables=self._consumables.get(customer_id, []),
            warranties=self._warranties.get(customer_id, []),
            order_gap_days=self._order_gaps.get(customer_id, float("nan")),
            open_refunds=self._refunds.get(customer_id, []),
        )
