"""Ingestion of small hand-made shops: normalization, quarantine, resolution, snapshot ids."""

from __future__ import annotations

import copy
import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from server.errors import DataError
from server.knowledge.shop.ingest import ingest_dir
from server.knowledge.shop.schema import ENTITIES, Merge

Tables = dict[str, list[dict[str, Any]]]


def base_shop() -> Tables:
    return {
        "customers": [
            {"customer_id": "C1", "name": "Anna  Schmidt", "email": "Anna@Example.com",
             "phone": "+49 151 1111111", "segment": "standard", "created_at": "2025-01-01"},
            {"customer_id": "C2", "name": "Ben Weber", "email": "ben@example.com",
             "phone": "", "segment": "VIP", "created_at": "2025-02-01T09:00:00+01:00"},
        ],
        "products": [
            {"product_id": "P-1", "title": "Nova Phone", "brand": "Novaphone",
             "category": "electronics > phones", "price": "499.00", "currency": "eur",
             "in_stock": "true", "warranty_months": "24", "description": "A phone &amp; more",
             "complements": ["P-2", "P-3", "P-404"], "replenish_days": "0"},
            {"product_id": "P-2", "title": "Clear Case", "brand": "Shellguard",
             "category": "Electronics/Phones/Cases", "price": "$19.90", "currency": "EUR",
             "in_stock": "", "warranty_months": "", "description": "", "complements": [],
             "replenish_days": ""},
            {"product_id": "P-3", "title": "Espresso Beans 1 kg", "brand": "Roastery",
             "category": "grocery/coffee", "price": "1,018.90", "currency": "EUR",
             "in_stock": "no", "warranty_months": "0", "description": "", "complements": [],
             "replenish_days": "21"},
        ],
        "orders": [
            {"order_id": "O1", "customer_id": "C1", "ordered_at": "2026-01-05 10:00:00",
             "status": "Delivered", "shipped_at": "2026-01-06", "delivered_at": "2026-01-08",
             "total": "518.90", "currency": "EUR"},
            {"order_id": "O2", "customer_id": "C2", "ordered_at": "2026-02-01T08:00:00Z",
             "status": "pending", "shipped_at": "", "delivered_at": "", "total": "37.80",
             "currency": "EUR"},
        ],
        "order_items": [
            {"order_id": "O1", "product_id": "P-1", "quantity": "1", "unit_price": "499.00"},
            {"order_id": "O1", "product_id": "P-2", "quantity": "1", "unit_price": "19.90"},
            {"order_id": "O2", "product_id": "P-3", "quantity": "2", "unit_price": "18.90"},
        ],
        "returns": [
            {"order_id": "O1", "product_id": "P-2", "returned_at": "2026-01-10",
             "reason": "Does not fit", "refund_status": "Refunded", "refund_amount": "19.90"},
        ],
        "warranties": [
            {"warranty_id": "W1", "customer_id": "C1", "order_id": "O1", "product_id": "P-1",
             "starts_at": "2026-01-08", "expires_at": "2028-01-08", "kind": "",
             "claim_status": ""},
        ],
        "policies": [
            {"policy_id": "pol-1", "title": "Returns", "text": "30 days.",
             "applies_to": "*", "version": "1",
             "params": {"return_window_days": 30, "refund_auto_limit": 150.0}},
        ],
        "articles": [
            {"article_id": "a1", "title": "Phone care", "body": "## Battery\nKeep it cool.",
             "tags": ["Care", "phone"], "product_ids": ["P-1", "P-9"],
             "categories": ["electronics > phones"], "locale": "", "doc_type": ""},
        ],
    }


def write_shop(path: Path, tables: Tables, fmt: str = "csv") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for entity, rows in tables.items():
        if fmt == "jsonl":
            with (path / f"{entity}.jsonl").open("w") as fh:
                for row in rows:
                    fh.write(json.dumps(row) + "\n")
            continue
        header = list(rows[0]) if rows else ["id"]
        with (path / f"{entity}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in rows:
                w.writerow([_csv_cell(row.get(h, "")) for h in header])
    return path


def _csv_cell(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def test_clean_shop_is_accepted_and_normalized(tmp_path: Path) -> None:
    result = ingest_dir(write_shop(tmp_path / "shop", base_shop()), as_of=datetime(2026, 3, 1))
    snap = result.snapshot
    assert result.quarantined == []
    assert {e: c.accepted for e, c in snap.counts.items()} == {
        "customers": 2, "products": 3, "policies": 1, "articles": 1, "orders": 2,
        "order_items": 3, "returns": 1, "warranties": 1,
    }
    c1, c2 = snap.customers
    assert (c1.name, c1.email, c1.phone) == ("Anna Schmidt", "anna@example.com", "+491511111111")
    assert c2.segment == "vip" and c2.created_at == datetime(2025, 2, 1, 8, tzinfo=UTC)
    p1, p2, p3 = snap.products
    assert p1.category == "Electronics/Phones" and p1.currency == "EUR"
    assert p1.description == "A phone & more"
    assert p1.complements == ("P-2", "P-3")  # unknown P-404 dropped
    assert (p2.price, p2.in_stock, p2.warranty_months) == (19.9, True, 0)
    assert (p3.price, p3.in_stock, p3.replenish_days) == (1018.9, False, 21)
    o1 = snap.orders[0]
    assert o1.status == "delivered" and o1.ordered_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert snap.orders[1].status == "processing" and snap.orders[1].shipped_at is None
    assert snap.returns[0].refund_status == "refunded"
    assert snap.warranties[0].kind == "manufacturer"
    assert snap.policies[0].params == {"refund_auto_limit": 150.0, "return_window_days": 30}
    art = snap.articles[0]
    assert art.product_ids == ("P-1",) and art.tags == ("care", "phone")
    assert art.categories == ("Electronics/Phones",) and art.doc_type == "article"
    assert snap.as_of == datetime(2026, 3, 1, tzinfo=UTC)
    assert result.dropped_refs == 2
    assert snap.snapshot_id.startswith("snap-") and len(snap.snapshot_id) == 17


def test_snapshot_id_same_across_formats_and_row_order(tmp_path: Path) -> None:
    tables = base_shop()
    a = ingest_dir(write_shop(tmp_path / "csv", tables)).snapshot
    b = ingest_dir(write_shop(tmp_path / "jsonl", tables, "jsonl")).snapshot
    shuffled = {e: list(reversed(rows)) for e, rows in tables.items()}
    c = ingest_dir(write_shop(tmp_path / "rev", shuffled)).snapshot
    assert a.snapshot_id == b.snapshot_id == c.snapshot_id
    assert msgspec.json.encode(a.customers) == msgspec.json.encode(b.customers)
    changed = copy.deepcopy(tables)
    changed["order_items"][2]["unit_price"] = "18.91"
    d = ingest_dir(write_shop(tmp_path / "changed", changed)).snapshot
    assert d.snapshot_id != a.snapshot_id


def _add(tables: Tables, entity: str, **row: Any) -> Tables:
    out = copy.deepcopy(tables)
    template = dict(out[entity][0])
    template.update(row)
    out[entity].append(template)
    return out


BAD_ROWS = [
    ("customers", {"customer_id": "C9", "email": "not-an-email"}, "invalid email"),
    ("customers", {"customer_id": "C9", "email": "x@y.de", "created_at": "yesterday"},
     "bad date in created_at"),
    ("customers", {"customer_id": "C9", "email": "x@y.de", "phone": "12"}, "invalid phone"),
    ("products", {"product_id": "Q-1", "title": "Neg", "price": "-1.00"}, "negative price"),
    ("products", {"product_id": "Q-1", "title": "Cur", "currency": "XYZ"}, "unknown currency"),
    ("products", {"product_id": "Q-1", "title": "Cur", "currency": "EURO"}, "unknown currency"),
    ("orders", {"order_id": "O9", "status": "teleported"}, "unknown order status"),
    ("orders", {"order_id": "O9", "customer_id": "C404"}, "unknown customer"),
    ("orders", {"order_id": "O1"}, "duplicate order_id"),
    ("orders", {"order_id": "O9", "shipped_at": "2026-01-09", "delivered_at": "2026-01-07"},
     "delivered_at before shipped_at"),
    ("order_items", {"product_id": "P-404"}, "unknown product"),
    ("order_items", {"order_id": "O404"}, "unknown order"),
    ("order_items", {"quantity": "0"}, "quantity below 1"),
    ("returns", {"product_id": "P-3"}, "is not in order"),
    ("returns", {"refund_status": "maybe"}, "unknown refund status"),
    ("warranties", {"warranty_id": "W9", "order_id": "O404"}, "unknown order"),
    ("warranties", {"warranty_id": "W9", "product_id": "P-404"}, "unknown product"),
    ("warranties", {"warranty_id": "W9", "expires_at": "2020-01-01"}, "expires_at before"),
    ("policies", {"policy_id": "pol-2", "params": "[1, 2]"}, "params is not a JSON object"),
    ("articles", {"article_id": "a2", "body": "  "}, "missing title or body"),
    ("articles", {"article_id": "a2", "doc_type": "memo"}, "unknown doc_type"),
]


@pytest.mark.parametrize(("entity", "change", "reason"), BAD_ROWS)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_bad_row_is_quarantined_with_reason(
    tmp_path: Path, entity: str, change: dict[str, Any], reason: str, fmt: str
) -> None:
    tables = _add(base_shop(), entity, **change)
    qdir = tmp_path / "q"
    result = ingest_dir(write_shop(tmp_path / "shop", tables, fmt), qdir)
    assert len(result.quarantined) == 1
    q = result.quarantined[0]
    assert (q.entity, q.source) == (entity, f"{entity}.{fmt}")
    assert reason in q.reason
    # The bad row is the last one. JSONL: one line per row. CSV: after the header and
    # the earlier records, some of which span lines (multi-line article bodies).
    before = tables[entity][:-1]
    spans = sum(1 + sum(str(v).count("\n") for v in row.values()) for row in before)
    assert q.line == (len(before) + 1 if fmt == "jsonl" else 1 + spans + 1)
    assert isinstance(q.raw, dict) and all(k in q.raw for k in change)
    counts = result.snapshot.counts[entity]
    assert (counts.read, counts.quarantined) == (len(tables[entity]), 1)
    assert counts.read == counts.accepted + counts.quarantined + counts.merged
    assert result.quarantine_path is not None
    lines = result.quarantine_path.read_text().splitlines()
    assert [json.loads(x)["reason"] for x in lines] == [q.reason]
    # Quarantine never changes the accepted data: same id as the clean shop.
    clean = ingest_dir(write_shop(tmp_path / "clean", base_shop(), fmt)).snapshot
    assert result.snapshot.snapshot_id == clean.snapshot_id


def test_unparseable_rows_are_quarantined(tmp_path: Path) -> None:
    shop = write_shop(tmp_path / "shop", base_shop())
    with (shop / "order_items.csv").open("a") as fh:
        fh.write("O1,P-1,1,499.00,extra\n")
    (shop / "returns.csv").unlink()
    (shop / "returns.jsonl").write_text('{"order_id": "O1",\n["a list"]\n\n')
    result = ingest_dir(shop)
    reasons = sorted((q.entity, q.line, q.reason.split(":")[0]) for q in result.quarantined)
    assert reasons == [
        ("order_items", 5, "expected 4 columns, got 5"),
        ("returns", 1, "bad JSON"),
        ("returns", 2, "not a JSON object"),
    ]
    assert result.snapshot.counts["returns"].read == 2
    assert result.snapshot.returns == []


def test_customers_merge_by_email_and_phone_and_rewrite_references(tmp_path: Path) -> None:
    tables = base_shop()
    tables["customers"] += [
        {"customer_id": "C3", "name": "", "email": " ANNA@example.com", "phone": "",
         "segment": "", "created_at": "2025-06-01"},
        {"customer_id": "C4", "name": "A. S.", "email": "anna.work@example.com",
         "phone": "0049-151-1111111", "segment": "", "created_at": "2025-07-01"},
        # Created before C2: C5 is kept, C2 is merged into it.
        {"customer_id": "C5", "name": "Ben W.", "email": "BEN@example.com", "phone": "0301234567",
         "segment": "vip", "created_at": "2024-12-01"},
    ]
    tables["orders"].append({**tables["orders"][0], "order_id": "O3", "customer_id": "C3"})
    tables["order_items"].append({**tables["order_items"][0], "order_id": "O3"})
    tables["warranties"][0]["customer_id"] = "C4"
    result = ingest_dir(write_shop(tmp_path / "shop", tables))
    snap = result.snapshot
    assert [c.customer_id for c in snap.customers] == ["C1", "C5"]
    assert sorted(snap.merges, key=lambda m: m.merged_id) == [
        Merge("customers", "C5", "C2", "same_email"),
        Merge("customers", "C1", "C3", "same_email"),
        Merge("customers", "C1", "C4", "same_phone"),
    ]
    owners = {o.order_id: o.customer_id for o in snap.orders}
    assert owners == {"O1": "C1", "O2": "C5", "O3": "C1"}
    assert snap.warranties[0].customer_id == "C1"
    c = snap.counts["customers"]
    assert (c.read, c.accepted, c.quarantined, c.merged) == (5, 2, 0, 3)
    assert result.summary()["merges"] == 3


def test_products_merge_by_sku_and_title_brand_and_rewrite_references(tmp_path: Path) -> None:
    tables = base_shop()
    p1, p2 = tables["products"][0], tables["products"][1]
    tables["products"] += [
        {**p2, "product_id": "p 2", "price": "21.00"},  # same SKU as P-2
        {**p1, "product_id": "X-9", "title": "NOVA   phone!", "complements": ["p 2"]},
        {**p1, "product_id": "X-10", "brand": ""},  # same title, no brand: not a duplicate
    ]
    tables["order_items"].append({"order_id": "O2", "product_id": "X-9", "quantity": "1",
                                  "unit_price": "499"})
    tables["returns"][0]["product_id"] = "p 2"
    tables["articles"][0]["product_ids"] = ["X-9", "p 2", "P-1"]
    tables["products"][2]["complements"] = ["p 2", "X-9", "P-3"]
    snap = ingest_dir(write_shop(tmp_path / "shop", tables)).snapshot
    assert [p.product_id for p in snap.products] == ["P-1", "P-2", "P-3", "X-10"]
    assert sorted(snap.merges, key=lambda m: m.merged_id) == [
        Merge("products", "P-1", "X-9", "same_title_brand"),
        Merge("products", "P-2", "p 2", "same_sku"),
    ]
    assert snap.products[1].price == 19.9  # the first seen record is kept as it was
    assert snap.products[2].complements == ("P-2", "P-1")  # rewritten, self-reference dropped
    assert {(i.order_id, i.product_id) for i in snap.order_items} == {
        ("O1", "P-1"), ("O1", "P-2"), ("O2", "P-3"), ("O2", "P-1"),
    }
    assert snap.returns[0].product_id == "P-2"
    assert snap.articles[0].product_ids == ("P-1", "P-2")
    c = snap.counts["products"]
    assert c.read == c.accepted + c.quarantined + c.merged == 6


def test_missing_inputs_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        ingest_dir(tmp_path / "nope")
    shop = write_shop(tmp_path / "shop", base_shop())
    (shop / "order_items.csv").unlink()
    with pytest.raises(DataError, match="order_items"):
        ingest_dir(shop)
    shop2 = write_shop(tmp_path / "shop2", base_shop())
    write_shop(shop2, {"orders": base_shop()["orders"]}, "jsonl")
    with pytest.raises(DataError, match=r"both orders\.csv and orders\.jsonl"):
        ingest_dir(shop2)
    shop3 = write_shop(tmp_path / "shop3", base_shop())
    (shop3 / "customers.csv").write_text("name,email\nAnna,anna@example.com\n")
    with pytest.raises(DataError, match="missing required column"):
        ingest_dir(shop3)


def test_optional_entities_may_be_absent_and_as_of_comes_from_shop_json(tmp_path: Path) -> None:
    tables = {e: rows for e, rows in base_shop().items() if e in
              ("customers", "products", "orders", "order_items")}
    shop = write_shop(tmp_path / "shop", tables)
    (shop / "shop.json").write_text('{"as_of": "2026-11-15T12:00:00Z"}')
    result = ingest_dir(shop, as_of=datetime(2020, 1, 1, tzinfo=UTC))
    snap = result.snapshot
    assert snap.as_of == datetime(2026, 11, 15, 12, tzinfo=UTC)
    assert snap.returns == snap.warranties == snap.policies == snap.articles == []
    assert result.quarantine_path is None
    summary = result.summary()
    assert set(summary["entities"]) == set(ENTITIES)
    assert summary["totals"]["read"] == 2 + 3 + 2 + 3


def test_marketing_opt_in_defaults_to_true_and_reads_an_opt_out(tmp_path: Path) -> None:
    tables = base_shop()
    tables["customers"][0]["marketing_opt_in"] = "no"  # C2's cell stays empty
    snap = ingest_dir(write_shop(tmp_path / "shop", tables)).snapshot
    assert [c.marketing_opt_in for c in snap.customers] == [False, True]
    tables["customers"][0]["marketing_opt_in"] = "maybe"
    result = ingest_dir(write_shop(tmp_path / "bad", tables))
    reasons = [q.reason for q in result.quarantined]
    assert reasons[:1] == ["bad boolean in marketing_opt_in: 'maybe'"]
