"""Values an export leaves out but the rest of the shop implies: filled in, and counted.

Real exports carry ids and line items, not everything the schema holds. Row builders
(rows.py) mark a derivable value that is absent with a sentinel of its own type, and
after the cross-row checks `fill_derived` replaces each sentinel from the accepted
records and counts it under a summary key, so the summary says how much of the
snapshot was derived (docs/data-schema.md, "Derived values"):

- customer `created_at` (`MISSING_TIME`): the first order, else the snapshot's
  `as_of` (`customers.created_at.first_order`, `customers.created_at.as_of`);
- product `title` (""): the product id (`products.title`);
- product `price` (NaN): median unit price of its order items, else 0 (`products.price`);
- product and order `currency` (""): the shop's default (`products.currency`,
  `orders.currency`);
- order `total` (NaN): sum of quantity x unit price of its items plus their freight
  (`orders.total`);
- item `quantity` (0): 1, one row per unit as Olist-style exports write them
  (`order_items.quantity`).

Transactions (transactions.py) add their own keys (`orders.status`) to the counter.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from server.knowledge.shop.schema import Customer, Order, OrderItem, Product

MISSING_TIME = datetime.max.replace(tzinfo=UTC)
MISSING_NUMBER = math.nan
MISSING_QUANTITY = 0


def is_missing(value: float) -> bool:
    return math.isnan(value)


@dataclass
class Derived:
    customers: list[Customer]
    products: list[Product]
    orders: list[Order]
    items: list[OrderItem]
    counts: Counter[str] = field(default_factory=Counter)


def fill_derived(
    customers: list[Customer],
    products: list[Product],
    orders: list[Order],
    items: list[OrderItem],
    freight: dict[str, float],
    currency: str,
    as_of: datetime,
    counts: Counter[str] | None = None,
) -> Derived:
    """Replace every sentinel in the accepted records; `freight` is per order id."""
    counts = Counter() if counts is None else counts
    fixed_items: list[OrderItem] = []
    for i in items:
        if i.quantity == MISSING_QUANTITY:
            counts["order_items.quantity"] += 1
            i = msgspec.structs.replace(i, quantity=1)
        fixed_items.append(i)

    lines: dict[str, list[OrderItem]] = defaultdict(list)
    prices: dict[str, list[float]] = defaultdict(list)
    for i in fixed_items:
        lines[i.order_id].append(i)
        prices[i.product_id].append(i.unit_price)

    fixed_orders: list[Order] = []
    first_order: dict[str, datetime] = {}
    for o in orders:
        changes: dict[str, object] = {}
        if is_missing(o.total):
            counts["orders.total"] += 1
            total = sum(i.quantity * i.unit_price for i in lines.get(o.order_id, ()))
            changes["total"] = round(total + freight.get(o.order_id, 0.0), 2)
        if not o.currency:
            counts["orders.currency"] += 1
            changes["currency"] = currency
        fixed_orders.append(msgspec.structs.replace(o, **changes) if changes else o)
        seen = first_order.get(o.customer_id)
        if seen is None or o.ordered_at < seen:
            first_order[o.customer_id] = o.ordered_at

    fixed_products: list[Product] = []
    for p in products:
        changes = {}
        if not p.title:
            counts["products.title"] += 1
            changes["title"] = p.product_id
        if is_missing(p.price):
            counts["products.price"] += 1
            sold = prices.get(p.product_id)
            changes["price"] = round(statistics.median(sold), 2) if sold else 0.0
        if not p.currency:
            counts["products.currency"] += 1
            changes["currency"] = currency
        fixed_products.append(msgspec.structs.replace(p, **changes) if changes else p)

    fixed_customers: list[Customer] = []
    for c in customers:
        if c.created_at == MISSING_TIME:
            first = first_order.get(c.customer_id)
            counts[f"customers.created_at.{'first_order' if first else 'as_of'}"] += 1
            c = msgspec.structs.replace(c, created_at=first or as_of)
        fixed_customers.append(c)
    return Derived(fixed_customers, fixed_products, fixed_orders, fixed_items, counts)
