"""The temporal hold-out the recommender's tuner and its evaluation share: each
customer's last order (by time, cancelled ones skipped) is held out."""

from __future__ import annotations

from datetime import datetime

import msgspec

from server.knowledge.shop.schema import Order, Snapshot


class HeldOut(msgspec.Struct, frozen=True):
    customer_id: str
    at: datetime
    products: frozenset[str]


def hold_out_last_orders(snapshot: Snapshot) -> tuple[Snapshot, list[HeldOut]]:
    """The snapshot without each eligible customer's last order, and what was removed."""
    items_by_order: dict[str, set[str]] = {}
    for it in snapshot.order_items:
        items_by_order.setdefault(it.order_id, set()).add(it.product_id)
    by_customer: dict[str, list[Order]] = {}
    for o in snapshot.orders:
        if o.status != "cancelled" and items_by_order.get(o.order_id):
            by_customer.setdefault(o.customer_id, []).append(o)
    held: list[HeldOut] = []
    removed: set[str] = set()
    for cid in sorted(by_customer):
        orders = by_customer[cid]
        if len(orders) < 2:
            continue
        last = max(orders, key=lambda o: (o.ordered_at, o.order_id))
        removed.add(last.order_id)
        held.append(HeldOut(cid, last.ordered_at, frozenset(items_by_order[last.order_id])))
    train = msgspec.structs.replace(
        snapshot,
        snapshot_id=f"{snapshot.snapshot_id}-train",
        orders=[o for o in snapshot.orders if o.order_id not in removed],
        order_items=[it for it in snapshot.order_items if it.order_id not in removed],
        returns=[r for r in snapshot.returns if r.order_id not in removed],
        warranties=[w for w in snapshot.warranties if w.order_id not in removed],
    )
    return train, held
