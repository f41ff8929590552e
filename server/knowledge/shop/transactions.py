"""A flat export, one line item per row, split into customers, products, orders and items.

Many shops (and the public retail datasets) export one row per order line: order id,
customer id, date, product id, title, quantity, unit price, and maybe status, country
and segment. `split_transactions` reads such a file (`transactions.csv`/`.jsonl`, or
the file the mapping names) and builds the schema's records from it:

- one customer per customer id (segment and country from its latest line that has
  one; no e-mail, so no contact-based merge), one product per product id (title,
  category and brand from its latest line that has one), one order per order id with
  one item per purchase line; the order's status is the lines' status, else
  `delivered` (an exported invoice is a completed sale; counted as derived);
- cancellation lines are not noise: a *credit line* (negative quantity, or an order id
  that starts with the mapping's `cancel_prefix`, like the "C536379" invoices of
  public retail exports) becomes a return of the customer's latest earlier purchase
  of that product (refunded, amount = |quantity| x unit price); a credit note whose
  lines match no earlier purchase (bought before the export starts) becomes a
  cancelled order; a line with a cancelled status in an order that has purchases is
  an item of that order returned at once; an order whose lines are all cancelled is
  a cancelled order;
- lines without a customer id (guest checkouts) are quarantined as such, as are lines
  whose order belongs to another customer and credit lines inside a purchase order
  that match nothing the customer bought.

Records come back with the line they were built from, so later checks can still
quarantine them with a line number.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.knowledge.shop import normalize as n
from server.knowledge.shop.derive import MISSING_NUMBER, MISSING_TIME
from server.knowledge.shop.normalize import RowError
from server.knowledge.shop.reader import RowReader
from server.knowledge.shop.rows import currency_or_default
from server.knowledge.shop.schema import Customer, Order, OrderItem, Product, Return

ENTITY = "transactions"
GUEST = "guest line without customer_id"
SALE_STATUS = "delivered"
Origin = tuple[int, dict[str, Any]]  # (line, raw row) a record was built from


@dataclass(slots=True)
class Line:
    no: int
    raw: dict[str, Any]
    order_id: str
    customer_id: str
    ordered_at: datetime
    product_id: str
    title: str
    quantity: int  # signed: < 0 on credit lines
    unit_price: float
    status: str  # canonical order status, "" when the export has none
    currency: str  # "" = the shop's default
    country: str
    segment: str
    category: str
    brand: str
    credit: bool


@dataclass
class Split:
    source: str
    customers: list[tuple[int, dict[str, Any], Customer]] = field(default_factory=list)
    products: list[tuple[int, dict[str, Any], Product]] = field(default_factory=list)
    orders: list[tuple[int, dict[str, Any], Order]] = field(default_factory=list)
    items: list[tuple[int, dict[str, Any], OrderItem]] = field(default_factory=list)
    returns: list[tuple[int, dict[str, Any], Return]] = field(default_factory=list)
    derived: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)


def parse_line(no: int, raw: dict[str, Any], row: dict[str, Any], cancel_prefix: str,
               default_currency: str) -> Line:
    if n.text(row.get("customer_id")) == "":
        raise RowError(GUEST)
    order_id = n.ident(row.get("order_id"), "order_id")
    quantity = n.integer(row.get("quantity"), "quantity", minimum=-(2**62))
    if quantity == 0:
        raise RowError("quantity is 0")
    raw_status = row.get("status")
    status = "" if n.text(raw_status) == "" else n.order_status(raw_status)
    return Line(
        no=no,
        raw=raw,
        order_id=order_id,
        customer_id=n.ident(row.get("customer_id"), "customer_id"),
        ordered_at=n.required_timestamp(row.get("ordered_at"), "ordered_at"),
        product_id=n.ident(row.get("product_id"), "product_id"),
        title=n.text(row.get("title")),
        quantity=quantity,
        unit_price=n.money(row.get("unit_price"), "unit_price"),
        status=status,
        currency=currency_or_default(row.get("currency"), default_currency),
        country=n.text(row.get("country")),
        segment=n.text(row.get("segment")).lower(),
        category=n.category(row.get("category")),
        brand=n.text(row.get("brand")),
        credit=quantity < 0 or bool(cancel_prefix and order_id.startswith(cancel_prefix)),
    )


class _Purchases:
    """What each customer bought, per product, for matching credit lines to purchases."""

    def __init__(self) -> None:
        # (customer, product) -> [order_id, ordered_at, units not yet returned]
        self._by_key: dict[tuple[str, str], list[list[Any]]] = defaultdict(list)

    def add(self, line: Line) -> None:
        self._by_key[(line.customer_id, line.product_id)].append(
            [line.order_id, line.ordered_at, line.quantity]
        )

    def match(self, line: Line) -> str | None:
        """The latest earlier purchase with units left, which this credit then uses up."""
        units = abs(line.quantity)
        for entry in reversed(self._by_key.get((line.customer_id, line.product_id), [])):
            if entry[1] <= line.ordered_at and entry[2] > 0:
                entry[2] = max(0, entry[2] - units)
                return str(entry[0])
        return None


def _order(first: Line, status: str, ordered_at: datetime) -> Order:
    return Order(first.order_id, first.customer_id, ordered_at, status, None, None,
                 MISSING_NUMBER, first.currency)


def _return(line: Line, order_id: str) -> Return:
    return Return(order_id, line.product_id, line.ordered_at, "cancelled", "refunded",
                  round(abs(line.quantity) * line.unit_price, 2))


def _item(line: Line) -> tuple[int, dict[str, Any], OrderItem]:
    return line.no, line.raw, OrderItem(line.order_id, line.product_id, abs(line.quantity),
                                        line.unit_price)


def split_transactions(rd: RowReader, default_currency: str) -> Split:
    file = rd.file(ENTITY)
    assert file is not None
    prefix = rd.mapping.entity(ENTITY).cancel_prefix
    lines = rd.load_lines(ENTITY, lambda no, raw, row: parse_line(
        no, raw, row, prefix, default_currency))
    source = file.name
    split = Split(source)
    quarantine = rd.quarantine
    by_order: dict[str, list[Line]] = {}
    for line in lines:
        group = by_order.setdefault(line.order_id, [])
        if group and line.customer_id != group[0].customer_id:
            quarantine(ENTITY, source, line.no, line.raw,
                       f"order {line.order_id!r} belongs to customer {group[0].customer_id!r}")
            continue
        group.append(line)

    used: list[Line] = []
    purchases = _Purchases()
    groups = sorted((min(x.ordered_at for x in g), g[0].no, g) for g in by_order.values())
    for at, _, group in groups:
        first = group[0]
        bought = [x for x in group if not x.credit and x.status != "cancelled"]
        cancelled = [x for x in group if not x.credit and x.status == "cancelled"]
        credits = [x for x in group if x.credit]
        for x in bought:
            purchases.add(x)
        unmatched: list[Line] = []
        for x in credits:
            order_id = purchases.match(x)
            if order_id is None:
                unmatched.append(x)
                continue
            split.returns.append((x.no, x.raw, _return(x, order_id)))
            used.append(x)
        if bought:
            status = next((x.status for x in bought if x.status), "")
            if not status:
                split.derived["orders.status"] += 1
            split.orders.append((first.no, first.raw, _order(bought[0], status or SALE_STATUS, at)))
            for x in [*bought, *cancelled]:
                split.items.append(_item(x))
                used.append(x)
            split.returns += [(x.no, x.raw, _return(x, x.order_id)) for x in cancelled]
            for x in unmatched:
                quarantine(ENTITY, source, x.no, x.raw,
                           f"credit line for product {x.product_id!r} that customer "
                           f"{x.customer_id!r} has not bought before")
        elif cancelled or unmatched:
            rest = [*cancelled, *unmatched]
            split.orders.append((rest[0].no, rest[0].raw, _order(rest[0], "cancelled", at)))
            split.stats["cancelled_orders"] += 1
            for x in rest:
                split.items.append(_item(x))
                used.append(x)
    rd.counts[ENTITY].accepted = len(used)
    split.stats.update(items=len(split.items), returns=len(split.returns))
    _customers_and_products(split, used)
    return split


def _customers_and_products(split: Split, used: list[Line]) -> None:
    by_customer: dict[str, list[Line]] = defaultdict(list)
    by_product: dict[str, list[Line]] = defaultdict(list)
    for x in sorted(used, key=lambda x: (x.ordered_at, x.no)):
        by_customer[x.customer_id].append(x)
        by_product[x.product_id].append(x)

    def latest(xs: list[Line], attr: str) -> str:
        return next((str(getattr(x, attr)) for x in reversed(xs) if getattr(x, attr)), "")

    for cid, xs in by_customer.items():
        split.customers.append((xs[0].no, xs[0].raw, Customer(
            customer_id=cid, name="", email="", phone="",
            segment=latest(xs, "segment") or "standard", created_at=MISSING_TIME,
            country=latest(xs, "country"),
        )))
    for pid, xs in by_product.items():
        split.products.append((xs[0].no, xs[0].raw, Product(
            product_id=pid, title=latest(xs, "title"), brand=latest(xs, "brand"),
            category=latest(xs, "category"), price=MISSING_NUMBER,
            currency=latest(xs, "currency"), in_stock=True, warranty_months=0,
            description="",
        )))
