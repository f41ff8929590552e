"""The shop's data schema: one msgspec Struct per entity, plus the snapshot that holds them.

These are the normalized, validated records that ingestion produces and that the
graph, facts, retrieval and recommendation layers consume. Raw files (CSV or JSONL,
one per entity) are documented in docs/data-schema.md; ingestion maps them here.

All datetimes are timezone-aware UTC. Money is a float in the row's currency
(ISO 4217, upper case). Ids are stripped strings, case preserved.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

ORDER_STATUSES = ("processing", "shipped", "delivered", "returned", "cancelled")
REFUND_STATUSES = ("requested", "approved", "refunded", "rejected")
# Entities in the order ingestion reads them (later ones reference earlier ones).
ENTITIES = (
    "customers",
    "products",
    "policies",
    "articles",
    "orders",
    "order_items",
    "returns",
    "warranties",
)


class Customer(msgspec.Struct, frozen=True):
    customer_id: str
    name: str
    email: str  # normalized: lower case, stripped
    phone: str  # normalized: E.164-like "+<digits>" or "" when absent
    segment: str  # e.g. "standard", "vip", "b2b"
    created_at: datetime
    marketing_opt_in: bool = True  # False: no marketing nudges (retention)


class Product(msgspec.Struct, frozen=True):
    product_id: str  # the SKU
    title: str
    brand: str
    category: str  # normalized path, "Electronics/Phones/Cases"
    price: float
    currency: str
    in_stock: bool
    warranty_months: int  # 0 = no manufacturer warranty
    description: str
    # Optional enrichments (empty when the source does not give them).
    complements: tuple[str, ...] = ()  # product ids this one goes with (phone -> case)
    replenish_days: int = 0  # typical re-buy cadence for consumables; 0 = not a consumable


class Order(msgspec.Struct, frozen=True):
    order_id: str
    customer_id: str
    ordered_at: datetime
    status: str  # one of ORDER_STATUSES
    shipped_at: datetime | None
    delivered_at: datetime | None
    total: float
    currency: str


class OrderItem(msgspec.Struct, frozen=True):
    order_id: str
    product_id: str
    quantity: int
    unit_price: float


class Return(msgspec.Struct, frozen=True):
    order_id: str
    product_id: str
    returned_at: datetime
    reason: str
    refund_status: str  # one of REFUND_STATUSES
    refund_amount: float = 0.0


class Warranty(msgspec.Struct, frozen=True):
    warranty_id: str
    customer_id: str
    order_id: str
    product_id: str
    starts_at: datetime
    expires_at: datetime
    kind: str = "manufacturer"  # manufacturer | extended
    claim_status: str = ""  # "" (no claim), open, approved, rejected


class Policy(msgspec.Struct, frozen=True):
    policy_id: str
    title: str
    text: str
    applies_to: str  # "*" or a category path prefix, e.g. "Electronics"
    version: str
    # Machine-readable terms used by facts and governance, e.g.
    # {"return_window_days": 30, "refund_auto_limit": 150.0}
    params: dict[str, float | int | str | bool] = {}


class Article(msgspec.Struct, frozen=True):
    article_id: str
    title: str
    body: str  # may contain markdown headings ("## ...") and paragraphs
    tags: tuple[str, ...] = ()
    product_ids: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    locale: str = "en"
    doc_type: str = "article"  # article | policy | guideline | faq


class Merge(msgspec.Struct, frozen=True):
    """One entity-resolution decision: `merged_id` was folded into `kept_id`."""

    entity: str  # customers | products
    kept_id: str
    merged_id: str
    rule: str  # e.g. "same_email", "same_phone", "same_sku", "same_title_brand"


class EntityCount(msgspec.Struct):
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    merged: int = 0


class Snapshot(msgspec.Struct):
    """A validated, normalized, entity-resolved view of one shop data directory."""

    snapshot_id: str  # content hash of the normalized records, e.g. "snap-3f2a9c1d0b7e"
    customers: list[Customer]
    products: list[Product]
    orders: list[Order]
    order_items: list[OrderItem]
    returns: list[Return]
    warranties: list[Warranty]
    policies: list[Policy]
    articles: list[Article]
    merges: list[Merge] = []
    counts: dict[str, EntityCount] = {}
    # "now" for the shop: facts (return windows, cadences) are computed against it.
    # The demo shop pins it so answers are deterministic; real data uses ingest time.
    as_of: datetime | None = None
