"""A seeded shop whose purchases follow a Zipf popularity and nothing else: no
complements, no consumables, items drawn independently of what a customer owns. The
graph has no signal to find there, so a recommender that does not lean on
popularity loses to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from server.knowledge.shop.schema import Customer, Order, OrderItem, Product, Snapshot

START = datetime(2025, 1, 1, tzinfo=UTC)


def popularity_shop(customers: int = 600, products: int = 120, seed: int = 3,
                    zipf: float = 1.1) -> Snapshot:
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, products + 1) ** zipf
    p = p[rng.permutation(products)]  # popularity unrelated to ids or categories
    p /= p.sum()
    prods = [Product(f"P{i:04d}", f"Item {i}", f"Brand{i % 7}", f"Cat{i % 9}/Sub{i % 4}",
                     10.0 + i, "EUR", True, 0, f"item {i}", (), 0) for i in range(products)]
    custs, orders, items = [], [], []
    for c in range(customers):
        cid = f"C{c:05d}"
        custs.append(Customer(cid, f"Customer {c}", f"c{c}@example.com", "", "standard", START))
        n_orders = 1 + int(rng.poisson(2.0))
        days = np.sort(rng.uniform(0, 360, n_orders))
        for k, d in enumerate(days.tolist()):
            oid = f"O{c:05d}-{k}"
            at = START + timedelta(days=d)
            picked = rng.choice(products, size=1 + int(rng.integers(0, 3)), replace=False, p=p)
            orders.append(Order(oid, cid, at, "delivered", at, at + timedelta(days=2),
                                10.0 * len(picked), "EUR"))
            items += [OrderItem(oid, prods[j].product_id, 1, prods[j].price)
                      for j in picked.tolist()]
    return Snapshot("snap-zipf", custs, prods, orders, items, [], [], [], [],
                    as_of=START + timedelta(days=365))
