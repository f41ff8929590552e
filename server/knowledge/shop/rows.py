"""Raw row -> domain record, one builder per entity.

A builder takes one row as read (a dict of column -> raw value) and returns the
normalized schema Struct, or raises `RowError` naming the first problem. Builders
check only what one row can tell; cross-row rules (duplicates, references) live in
ingest.py. Column lists here are the documented file schema (docs/data-schema.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from server.knowledge.shop import normalize as n
from server.knowledge.shop.normalize import RowError
from server.knowledge.shop.schema import (
    Article,
    Customer,
    Order,
    OrderItem,
    Policy,
    Product,
    Return,
    Warranty,
)

Row = dict[str, Any]

# Columns a file must have (CSV header check; JSONL rows report them missing).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "email", "created_at"),
    "products": ("product_id", "title", "price", "currency"),
    "policies": ("policy_id", "title", "text"),
    "articles": ("article_id", "title", "body"),
    "orders": ("order_id", "customer_id", "ordered_at", "status", "total", "currency"),
    "order_items": ("order_id", "product_id", "quantity", "unit_price"),
    "returns": ("order_id", "product_id", "returned_at", "refund_status"),
    "warranties": (
        "warranty_id",
        "customer_id",
        "order_id",
        "product_id",
        "starts_at",
        "expires_at",
    ),
}


def customer(row: Row) -> Customer:
    return Customer(
        customer_id=n.ident(row.get("customer_id"), "customer_id"),
        name=n.text(row.get("name")),
        email=n.email(row.get("email")),
        phone=n.phone(row.get("phone")),
        segment=n.text(row.get("segment")).lower() or "standard",
        created_at=n.required_timestamp(row.get("created_at"), "created_at"),
        marketing_opt_in=n.boolean(row.get("marketing_opt_in"), "marketing_opt_in",
                                   default=True),
    )


def product(row: Row) -> Product:
    title = n.text(row.get("title"))
    if not title:
        raise RowError("missing title")
    return Product(
        product_id=n.ident(row.get("product_id"), "product_id"),
        title=title,
        brand=n.text(row.get("brand")),
        category=n.category(row.get("category")),
        price=n.money(row.get("price"), "price"),
        currency=n.currency(row.get("currency")),
        in_stock=n.boolean(row.get("in_stock"), "in_stock", default=True),
        warranty_months=n.integer(row.get("warranty_months"), "warranty_months", default=0),
        description=n.text(row.get("description")),
        complements=n.str_list(row.get("complements")),
        replenish_days=n.integer(row.get("replenish_days"), "replenish_days", default=0),
    )


def order(row: Row) -> Order:
    ordered_at = n.required_timestamp(row.get("ordered_at"), "ordered_at")
    shipped_at = n.timestamp(row.get("shipped_at"), "shipped_at", optional=True)
    delivered_at = n.timestamp(row.get("delivered_at"), "delivered_at", optional=True)
    if shipped_at is not None and shipped_at < ordered_at:
        raise RowError("shipped_at before ordered_at")
    if delivered_at is not None and delivered_at < (shipped_at or ordered_at):
        raise RowError("delivered_at before shipped_at/ordered_at")
    return Order(
        order_id=n.ident(row.get("order_id"), "order_id"),
        customer_id=n.ident(row.get("customer_id"), "customer_id"),
        ordered_at=ordered_at,
        status=n.order_status(row.get("status")),
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        total=n.money(row.get("total"), "total"),
        currency=n.currency(row.get("currency")),
    )


def order_item(row: Row) -> OrderItem:
    return OrderItem(
        order_id=n.ident(row.get("order_id"), "order_id"),
        product_id=n.ident(row.get("product_id"), "product_id"),
        quantity=n.integer(row.get("quantity"), "quantity", minimum=1),
        unit_price=n.money(row.get("unit_price"), "unit_price"),
    )


def return_(row: Row) -> Return:
    raw_amount = row.get("refund_amount")
    amount = 0.0 if raw_amount in (None, "") else n.money(raw_amount, "refund_amount")
    return Return(
        order_id=n.ident(row.get("order_id"), "order_id"),
        product_id=n.ident(row.get("product_id"), "product_id"),
        returned_at=n.required_timestamp(row.get("returned_at"), "returned_at"),
        reason=n.text(row.get("reason")),
        refund_status=n.refund_status(row.get("refund_status")),
        refund_amount=amount,
    )


def warranty(row: Row) -> Warranty:
    starts = n.required_timestamp(row.get("starts_at"), "starts_at")
    expires = n.required_timestamp(row.get("expires_at"), "expires_at")
    if expires < starts:
        raise RowError("expires_at before starts_at")
    return Warranty(
        warranty_id=n.ident(row.get("warranty_id"), "warranty_id"),
        customer_id=n.ident(row.get("customer_id"), "customer_id"),
        order_id=n.ident(row.get("order_id"), "order_id"),
        product_id=n.ident(row.get("product_id"), "product_id"),
        starts_at=starts,
        expires_at=expires,
        kind=n.choice(row.get("kind"), n.WARRANTY_KINDS, "warranty kind", default="manufacturer"),
        claim_status=n.choice(
            row.get("claim_status"), n.CLAIM_STATUSES, "claim status", default=""
        ),
    )


def _params(value: Any) -> dict[str, float | int | str | bool]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except msgspec.DecodeError:
            raise RowError("params is not valid JSON") from None
    if not isinstance(value, dict):
        raise RowError("params is not a JSON object")
    out: dict[str, float | int | str | bool] = {}
    for key in sorted(value):  # sorted: the snapshot hash must not see source key order
        v = value[key]
        if not isinstance(v, str | int | float | bool):
            raise RowError(f"params[{key!r}] is not a scalar")
        out[str(key)] = v
    return out


def policy(row: Row) -> Policy:
    body = n.text(row.get("text"), multiline=True)
    title = n.text(row.get("title"))
    if not title or not body:
        raise RowError("missing title or text")
    applies = n.text(row.get("applies_to")) or "*"
    return Policy(
        policy_id=n.ident(row.get("policy_id"), "policy_id"),
        title=title,
        text=body,
        applies_to=applies if applies == "*" else n.category(applies),
        version=n.text(row.get("version")) or "1",
        params=_params(row.get("params")),
    )


def article(row: Row) -> Article:
    body = n.text(row.get("body"), multiline=True)
    title = n.text(row.get("title"))
    if not title or not body:
        raise RowError("missing title or body")
    return Article(
        article_id=n.ident(row.get("article_id"), "article_id"),
        title=title,
        body=body,
        tags=tuple(t.lower() for t in n.str_list(row.get("tags"))),
        product_ids=n.str_list(row.get("product_ids")),
        categories=tuple(n.category(c) for c in n.str_list(row.get("categories"))),
        locale=n.text(row.get("locale")).lower() or "en",
        doc_type=n.choice(row.get("doc_type"), n.DOC_TYPES, "doc_type", default="article"),
    )


BUILDERS: dict[str, Callable[[Row], Any]] = {
    "customers": customer,
    "products": product,
    "policies": policy,
    "articles": article,
    "orders": order,
    "order_items": order_item,
    "returns": return_,
    "warranties": warranty,
}
