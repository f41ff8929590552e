"""Ingestion of a shop data directory into a validated, resolved `Snapshot`.

Owns: applying the row builders (rows.py) through the file reader (reader.py),
cross-row checks (duplicate ids,
references to unknown or merged records), entity resolution (resolve.py), the
quarantine file, the per-entity counts and the content-hash snapshot id.
The file format and every rule are documented in docs/data-schema.md.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from server.errors import DataError
from server.knowledge.shop import normalize as n
from server.knowledge.shop import rows
from server.knowledge.shop.derive import fill_derived
from server.knowledge.shop.mapping import ColumnMapping
from server.knowledge.shop.normalize import RowError
from server.knowledge.shop.quarantine import reason_groups
from server.knowledge.shop.reader import QuarantinedRow, RowReader
from server.knowledge.shop.resolve import remap, resolve_customers, resolve_products
from server.knowledge.shop.schema import (
    ENTITIES,
    Customer,
    EntityCount,
    Merge,
    Order,
    OrderItem,
    Product,
    Snapshot,
)
from server.knowledge.shop.transactions import split_transactions

REQUIRED_ENTITIES = ("customers", "products", "orders", "order_items")
TRANSACTIONS = "transactions"
SHOP_FILE = "shop.json"
T = TypeVar("T")


@dataclass
class IngestResult:
    snapshot: Snapshot
    quarantine_path: Path | None
    quarantined: list[QuarantinedRow] = field(default_factory=list)
    dropped_refs: int = 0  # list references (complements, article product_ids) to unknown ids
    seconds: float = 0.0
    derived: dict[str, int] = field(default_factory=dict)  # derive.py's keys -> values filled
    transactions: dict[str, int] = field(default_factory=dict)  # a flat export's split, if any

    def summary(self) -> dict[str, Any]:
        snap = self.snapshot
        names = [*ENTITIES, *(e for e in snap.counts if e not in ENTITIES)]
        entities = {e: msgspec.structs.asdict(snap.counts[e]) for e in names}
        totals = {
            k: sum(c[k] for c in entities.values()) for k in msgspec.structs.asdict(EntityCount())
        }
        return {
            "snapshot_id": snap.snapshot_id,
            "as_of": snap.as_of.isoformat() if snap.as_of else None,
            "entities": entities,
            "totals": totals,
            "merges": len(snap.merges),
            "dropped_refs": self.dropped_refs,
            "derived": dict(sorted(self.derived.items())),
            "transactions": dict(sorted(self.transactions.items())),
            "quarantine": {
                "rows": len(self.quarantined),
                "reasons": reason_groups(self.quarantined),
            },
            "quarantine_path": str(self.quarantine_path) if self.quarantine_path else None,
            "seconds": round(self.seconds, 3),
        }


def _unique(key: Callable[[T], str], what: str) -> Callable[[T], T]:
    seen: set[str] = set()

    def check(rec: T) -> T:
        k = key(rec)
        if k in seen:
            raise RowError(f"duplicate {what} {k!r}")
        seen.add(k)
        return rec

    return check


class ShopMeta(msgspec.Struct, frozen=True):
    as_of: datetime | None = None  # the shop's pinned "now"
    currency: str = ""  # the default currency of rows that name none


def read_shop_meta(path: Path) -> ShopMeta:
    """`as_of` and `currency` from shop.json, when the directory has one."""
    file = path / SHOP_FILE
    if not file.is_file():
        return ShopMeta()
    try:
        meta = msgspec.json.decode(file.read_bytes())
    except msgspec.DecodeError as exc:
        raise DataError(f"{SHOP_FILE} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        return ShopMeta()
    try:
        as_of = n.timestamp(meta["as_of"], "as_of") if meta.get("as_of") else None
        currency = n.currency(meta["currency"]) if meta.get("currency") else ""
    except RowError as exc:
        raise DataError(f"{SHOP_FILE}: {exc}") from None
    return ShopMeta(as_of, currency)


def read_as_of(path: Path) -> datetime | None:
    """The shop's pinned "now" from shop.json, when the directory has one."""
    return read_shop_meta(path).as_of


def snapshot_id(snapshot: Snapshot) -> str:
    """sha256 over the canonical JSON of the eight record lists (not counts/merges/as_of)."""
    enc = msgspec.json.Encoder(order="deterministic")
    h = hashlib.sha256()
    for entity in ENTITIES:
        h.update(entity.encode())
        h.update(enc.encode(getattr(snapshot, entity)))
    return "snap-" + h.hexdigest()[:12]


def _default_currency(meta: ShopMeta, currency: str) -> str:
    if meta.currency or not currency:
        return meta.currency
    try:
        return n.currency(currency)
    except RowError as exc:
        raise DataError(f"default currency: {exc}") from None


def _check_files(rd: RowReader) -> bool:
    """Raise DataError for missing or clashing entity files; True for a flat export."""
    path = rd.path
    if not path.is_dir():
        raise DataError(f"shop data directory not found: {path}")
    for entity in (*ENTITIES, TRANSACTIONS):
        named = rd.mapping.entity(entity).file
        if named and rd.file(entity) is None:
            raise DataError(f"{path}: {named} (the mapping's file for {entity}) is missing")
    flat = rd.file(TRANSACTIONS) is not None
    if flat:
        both = [e for e in ("orders", "order_items") if rd.file(e) is not None]
        if both:
            raise DataError(f"{path}: transactions and {' and '.join(both)} both exist; "
                            "give orders either as line items or as orders + order_items")
    for entity in () if flat else REQUIRED_ENTITIES:
        if rd.file(entity) is None:
            raise DataError(f"{path}: required file {entity}.csv or {entity}.jsonl is missing "
                            "(or give a flat transactions file)")
    return flat


def ingest_dir(
    path: Path,
    quarantine_dir: Path | None = None,
    as_of: datetime | None = None,
    *,
    mapping: ColumnMapping | None = None,
    currency: str = "",
) -> IngestResult:
    """Read, validate, normalize and resolve one shop directory into a Snapshot.

    `mapping` renames an export's columns (mapping.py); `currency` is the default for
    rows without one when shop.json names none."""
    t0 = time.perf_counter()
    path = Path(path)
    rd = RowReader(path, mapping)
    flat = _check_files(rd)
    meta = read_shop_meta(path)
    snap_as_of = meta.as_of or (as_of.astimezone(UTC) if as_of else None) or datetime.now(UTC)
    default_currency = _default_currency(meta, currency)
    counts = rd.counts
    dropped = 0
    split = split_transactions(rd, default_currency) if flat else None

    accounts: list[str] = []  # parallel to customers_in

    def build_customer(row: dict[str, Any]) -> Customer:
        rec = rows.customer(row)
        accounts.append(n.text(row.get("account_id")))
        return rec

    customers_in = rd.load("customers", build_customer)
    products_in = rd.load("products", partial(rows.product, default_currency=default_currency))
    if split is not None:
        customers_in += _not_in_file(rd, "customers", split.source, split.customers,
                                     {c.customer_id for c in customers_in})
        products_in += _not_in_file(rd, "products", split.source, split.products,
                                    {p.product_id for p in products_in})
    customers, c_merges, c_map = resolve_customers(customers_in, accounts)
    products, p_merges, p_map = resolve_products(products_in)
    merges: list[Merge] = c_merges + p_merges
    for m in merges:
        counts[m.entity].merged += 1
    customer_ids = {c.customer_id for c in customers}
    product_ids = {p.product_id for p in products}

    fixed_products: list[Product] = []
    for p in products:
        comp, d = remap(p.complements, p_map, product_ids, own=p.product_id)
        dropped += d
        fixed_products.append(
            p if comp == p.complements else msgspec.structs.replace(p, complements=comp)
        )

    policies = rd.load("policies", _chain(rows.policy, _unique(lambda x: x.policy_id, "policy_id")))
    articles = []
    for a in rd.load(
        "articles", _chain(rows.article, _unique(lambda x: x.article_id, "article_id"))
    ):
        pids, d = remap(a.product_ids, p_map, product_ids)
        dropped += d
        articles.append(
            a if pids == a.product_ids else msgspec.structs.replace(a, product_ids=pids)
        )

    def check_order(rec: Any) -> Any:
        cid = c_map.get(rec.customer_id, rec.customer_id)
        if cid not in customer_ids:
            raise RowError(f"unknown customer {rec.customer_id!r}")
        return rec if cid == rec.customer_id else msgspec.structs.replace(rec, customer_id=cid)

    unique_order: Callable[[Order], Order] = _unique(lambda x: x.order_id, "order_id")
    order_steps = (check_order, unique_order)
    orders = rd.load("orders", _chain(
        partial(rows.order, default_currency=default_currency), *order_steps))
    if split is not None:
        orders += rd.take("orders", split.source, split.orders, _chain(*order_steps))
    order_at = {o.order_id: o.ordered_at for o in orders}
    lines: set[tuple[str, str]] = set()

    def check_item(rec: OrderItem) -> OrderItem:
        if rec.order_id not in order_at:
            raise RowError(f"unknown order {rec.order_id!r}")
        pid = p_map.get(rec.product_id, rec.product_id)
        if pid not in product_ids:
            raise RowError(f"unknown product {rec.product_id!r}")
        lines.add((rec.order_id, pid))
        return rec if pid == rec.product_id else msgspec.structs.replace(rec, product_id=pid)

    freight: dict[str, float] = defaultdict(float)

    def build_item(row: dict[str, Any]) -> OrderItem:
        raw = row.get("freight")
        charge = 0.0 if raw in (None, "") else n.money(raw, "freight")
        rec = check_item(rows.order_item(row))
        freight[rec.order_id] += charge
        return rec

    items = rd.load("order_items", build_item)
    if split is not None:
        items += rd.take("order_items", split.source, split.items, check_item)

    def check_return(rec: Any) -> Any:
        pid = p_map.get(rec.product_id, rec.product_id)
        if rec.order_id not in order_at:
            raise RowError(f"unknown order {rec.order_id!r}")
        if (rec.order_id, pid) not in lines:
            raise RowError(f"product {rec.product_id!r} is not in order {rec.order_id!r}")
        if rec.returned_at < order_at[rec.order_id]:
            raise RowError("returned_at before ordered_at")
        return rec if pid == rec.product_id else msgspec.structs.replace(rec, product_id=pid)

    returns = rd.load("returns", _chain(rows.return_, check_return))
    if split is not None:
        returns += rd.take("returns", split.source, split.returns, check_return)

    def check_warranty(rec: Any) -> Any:
        cid = c_map.get(rec.customer_id, rec.customer_id)
        pid = p_map.get(rec.product_id, rec.product_id)
        if cid not in customer_ids:
            raise RowError(f"unknown customer {rec.customer_id!r}")
        if rec.order_id not in order_at:
            raise RowError(f"unknown order {rec.order_id!r}")
        if pid not in product_ids:
            raise RowError(f"unknown product {rec.product_id!r}")
        return msgspec.structs.replace(rec, customer_id=cid, product_id=pid)

    warranties = rd.load(
        "warranties",
        _chain(rows.warranty, check_warranty, _unique(lambda x: x.warranty_id, "warranty_id")),
    )
    derived = fill_derived(customers, fixed_products, orders, items, freight, default_currency,
                           snap_as_of, Counter(split.derived if split else {}))
    customers, fixed_products = derived.customers, derived.products
    orders, items = derived.orders, derived.items
    for entity, recs in (
        ("customers", customers),
        ("products", fixed_products),
        ("policies", policies),
        ("articles", articles),
        ("orders", orders),
        ("order_items", items),
        ("returns", returns),
        ("warranties", warranties),
    ):
        counts[entity].accepted = len(recs)

    snap = Snapshot(
        snapshot_id="",
        customers=sorted(customers, key=lambda c: c.customer_id),
        products=sorted(fixed_products, key=lambda p: p.product_id),
        orders=sorted(orders, key=lambda o: o.order_id),
        order_items=sorted(
            items, key=lambda i: (i.order_id, i.product_id, i.quantity, i.unit_price)
        ),
        returns=sorted(returns, key=lambda r: (r.order_id, r.product_id, r.returned_at)),
        warranties=sorted(warranties, key=lambda w: w.warranty_id),
        policies=sorted(policies, key=lambda p: p.policy_id),
        articles=sorted(articles, key=lambda a: a.article_id),
        merges=merges,
        counts=counts,
        as_of=snap_as_of,
    )
    snap.snapshot_id = snapshot_id(snap)
    qpath = None
    if quarantine_dir is not None:
        quarantine_dir = Path(quarantine_dir)
        quarantine_dir.mkdir(parents=True, exist_ok=True)
        qpath = quarantine_dir / f"quarantine-{snap.snapshot_id}.jsonl"
        enc = msgspec.json.Encoder()
        with qpath.open("wb") as fh:
            for q in rd.quarantined:
                fh.write(enc.encode(q) + b"\n")
    return IngestResult(snap, qpath, rd.quarantined, dropped, time.perf_counter() - t0,
                        dict(derived.counts), dict(split.stats) if split else {})


def _not_in_file(rd: RowReader, entity: str, source: str,
                 records: list[tuple[int, dict[str, Any], T]], given: set[str]) -> list[T]:
    """Records a flat export implies, for ids the entity's own file does not give."""
    key = "customer_id" if entity == "customers" else "product_id"
    extra = [r for r in records if getattr(r[2], key) not in given]
    return rd.take(entity, source, extra, lambda rec: rec)


def _chain(*steps: Callable[[Any], Any]) -> Callable[[dict[str, Any]], Any]:
    """Compose a row builder with record checks; the first RowError wins."""
    first, *rest = steps

    def run(row: dict[str, Any]) -> Any:
        rec = first(row)
        for step in rest:
            rec = step(rec)
        return rec

    return run
