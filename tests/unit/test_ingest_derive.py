"""Only ids required: what an export leaves out is derived from the rest, and counted."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.knowledge.shop.ingest import ingest_dir
from tests.unit.test_ingest import Tables, base_shop, write_shop

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)


def sparse_shop() -> Tables:
    """The base shop as a thin export: no e-mails, creation dates, totals or currencies."""
    tables = copy.deepcopy(base_shop())
    for c in tables["customers"]:
        c["email"] = c["created_at"] = ""
    tables["customers"][0]["phone"] = ""
    tables["customers"].append({**tables["customers"][1], "customer_id": "C3", "name": "Never"})
    for o in tables["orders"]:
        o["total"] = o["currency"] = ""
    tables["products"][1].update(currency="", price="", title="")
    return tables


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_missing_values_are_derived_and_counted(tmp_path: Path, fmt: str) -> None:
    shop = write_shop(tmp_path / "shop", sparse_shop(), fmt)
    result = ingest_dir(shop, as_of=AS_OF, currency="eur")
    snap = result.snapshot
    assert result.quarantined == []
    by_id = {c.customer_id: c for c in snap.customers}
    assert by_id["C1"].email == ""
    assert by_id["C1"].created_at == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert by_id["C2"].created_at == datetime(2026, 2, 1, 8, tzinfo=UTC)  # first order
    assert by_id["C3"].created_at == AS_OF  # no order: the snapshot time
    totals = {o.order_id: (o.total, o.currency) for o in snap.orders}
    assert totals == {"O1": (518.9, "EUR"), "O2": (37.8, "EUR")}
    p2 = next(p for p in snap.products if p.product_id == "P-2")
    assert (p2.title, p2.price, p2.currency) == ("P-2", 19.9, "EUR")  # median sold price
    assert result.summary()["derived"] == {
        "customers.created_at.as_of": 1, "customers.created_at.first_order": 2,
        "orders.currency": 2, "orders.total": 2, "products.currency": 1,
        "products.price": 1, "products.title": 1,
    }


def test_without_contacts_customers_merge_only_by_id(tmp_path: Path) -> None:
    tables = sparse_shop()
    tables["customers"].append({**tables["customers"][0], "customer_id": "C1", "name": "dup"})
    snap = ingest_dir(write_shop(tmp_path / "shop", tables), currency="EUR").snapshot
    assert [(m.kept_id, m.merged_id, m.rule) for m in snap.merges] == [("C1", "C1", "same_id")]
    assert len(snap.customers) == 3  # C2 and C3 share no contact field: not merged


def test_a_given_value_is_kept_and_not_counted(tmp_path: Path) -> None:
    result = ingest_dir(write_shop(tmp_path / "shop", base_shop()), currency="USD")
    assert result.summary()["derived"] == {}
    assert {o.currency for o in result.snapshot.orders} == {"EUR"}


def test_shop_json_currency_wins_and_without_any_default_rows_are_quarantined(
    tmp_path: Path,
) -> None:
    shop = write_shop(tmp_path / "shop", sparse_shop())
    (shop / "shop.json").write_text('{"currency": "gbp"}')
    snap = ingest_dir(shop, currency="EUR").snapshot
    assert {o.currency for o in snap.orders} == {"GBP"}
    (shop / "shop.json").unlink()
    result = ingest_dir(shop)
    reasons = {(q.entity, q.reason.split(" (")[0]) for q in result.quarantined}
    assert reasons == {("orders", "missing currency"), ("products", "missing currency"),
                       ("order_items", "unknown order 'O1'"), ("order_items", "unknown order 'O2'"),
                       ("returns", "unknown order 'O1'"),
                       ("warranties", "unknown order 'O1'")}


def test_item_quantity_defaults_to_one_and_freight_joins_the_total(tmp_path: Path) -> None:
    tables = sparse_shop()
    for i in tables["order_items"]:
        i["quantity"] = ""
        i["freight"] = "2.50"
    result = ingest_dir(write_shop(tmp_path / "shop", tables), currency="EUR")
    snap = result.snapshot
    assert {i.quantity for i in snap.order_items} == {1}
    assert {o.order_id: o.total for o in snap.orders} == {"O1": 523.9, "O2": 21.4}
    assert result.summary()["derived"]["order_items.quantity"] == 3
