"""Exports in the shape real shops produce, loaded with a mapping file and no converter.

The fixtures under tests/data/exports/ are written by us, in the exact column layout
of two public retail datasets: the UCI "Online Retail II" transactions (one row per
invoice line, "C" credit notes, guest rows) and the Olist multi-file export (orders
without totals, customers without e-mail, items with price + freight).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.errors import DataError, InvalidInput
from server.knowledge.shop.ingest import IngestResult, ingest_dir
from server.knowledge.shop.mapping import load_mapping, parse_mapping
from server.knowledge.shop.quarantine import describe

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
RETAIL = EXPORTS / "online-retail-ii"
OLIST = EXPORTS / "olist"


def _ingest(path: Path, currency: str = "", as_of: datetime | None = None) -> IngestResult:
    return ingest_dir(path, as_of=as_of, mapping=load_mapping(path / "mapping.toml"),
                      currency=currency)


def _assert_every_row_accounted(result: IngestResult) -> None:
    for entity, c in result.summary()["entities"].items():
        assert c["read"] == c["accepted"] + c["quarantined"] + c["merged"], entity
    assert len(result.quarantined) == result.summary()["totals"]["quarantined"]


def test_online_retail_loads_with_only_a_mapping() -> None:
    result = _ingest(RETAIL)
    snap, summary = result.snapshot, result.summary()
    _assert_every_row_accounted(result)
    lines = len((RETAIL / "online_retail_II.csv").read_text().splitlines()) - 1
    assert summary["entities"]["transactions"] == {
        "read": lines, "accepted": 31, "quarantined": 6, "merged": 0}
    assert (len(snap.customers), len(snap.products), len(snap.orders), len(snap.order_items),
            len(snap.returns)) == (5, 17, 11, 29, 2)
    assert summary["transactions"] == {"cancelled_orders": 1, "items": 29, "returns": 2}
    assert summary["derived"] == {
        "customers.created_at.first_order": 5, "orders.currency": 11, "orders.status": 10,
        "orders.total": 11, "products.currency": 17, "products.price": 17,
    }
    c = {x.customer_id: x for x in snap.customers}["12680"]
    assert (c.country, c.email) == ("France", "")
    assert c.created_at == datetime(2010, 12, 5, 12, tzinfo=UTC)  # its first order
    orders = {o.order_id: o for o in snap.orders}
    # InvoiceDate "12/1/2010 8:26" through the mapping's date_format
    assert orders["581001"].ordered_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert (orders["581001"].total, orders["581001"].currency) == (71.28, "GBP")  # shop.json
    # "85123a" is the same SKU as "85123A": one product, the item rewritten to it.
    assert [(m.kept_id, m.merged_id, m.rule) for m in snap.merges] == [
        ("85123A", "85123a", "same_sku")]
    assert ("581004", "85123A") in {(i.order_id, i.product_id) for i in snap.order_items}
    heart = {p.product_id: p for p in snap.products}["85123A"]
    assert (heart.title, heart.price) == ("WHITE HANGING HEART T-LIGHT HOLDER", 2.55)


def test_online_retail_credit_notes_become_returns_or_cancelled_orders() -> None:
    snap = _ingest(RETAIL).snapshot
    # C581005 cancels 2 of the jam sets 14527 bought in 581004; C581014 six of the
    # hearts 17850 bought last (581012, not the earlier 581001).
    returns = [(r.order_id, r.product_id, r.refund_status, r.refund_amount) for r in snap.returns]
    assert returns == [("581004", "22960", "refunded", 8.5), ("581012", "85123A", "refunded", 15.3)]
    assert snap.returns[0].returned_at == datetime(2010, 12, 2, 10, 15, tzinfo=UTC)
    # C581006 cancels what 15311 bought before the export starts: a cancelled order.
    cancelled = {o.order_id: o for o in snap.orders}["C581006"]
    assert (cancelled.status, cancelled.customer_id) == ("cancelled", "15311")
    assert cancelled.total == 8.05
    items = sorted((i.product_id, i.quantity) for i in snap.order_items if i.order_id == "C581006")
    assert items == [("22197", 4), ("35004C", 1)]
    assert "C581005" not in {o.order_id for o in snap.orders}


def test_online_retail_quarantine_names_guests_dates_and_stray_credits() -> None:
    result = _ingest(RETAIL)
    by_line = {q.line: q.reason for q in result.quarantined}
    assert [line for line, r in by_line.items() if r == "guest line without customer_id"] == [
        21, 22, 23, 24]
    assert by_line[28] == "bad date in ordered_at: '2010-12-06 10:00' (expected '%m/%d/%Y %H:%M')"
    assert by_line[38].startswith("credit line for product '22960'")
    top = result.summary()["quarantine"]["reasons"][:3]
    assert [(g["count"], g["reason"]) for g in top] == [
        (4, "guest line without customer_id"), (1, "bad date in ordered_at"),
        (1, "credit line for product that customer has not bought before")]
    assert top[0]["example"]["line"] == 21 and top[0]["example"]["raw"]["invoice"] == "581008"
    text = describe(top[0])
    assert "4  transactions: guest line without customer_id" in text
    assert "online_retail_II.csv:21" in text and "DECORATIVE ROSE" in text


def test_olist_loads_with_only_a_mapping() -> None:
    result = _ingest(OLIST, currency="BRL", as_of=datetime(2018, 9, 1, tzinfo=UTC))
    snap, summary = result.snapshot, result.summary()
    _assert_every_row_accounted(result)
    counts = {e: (c["read"], c["accepted"], c["quarantined"]) for e, c in
              summary["entities"].items() if c["read"]}
    assert counts == {"customers": (10, 8, 0), "products": (7, 7, 0), "orders": (10, 9, 1),
                      "order_items": (12, 11, 1)}
    # Two people ordered twice: their per-order customer ids fold into one account.
    assert sorted(m.rule for m in snap.merges) == ["same_account", "same_account"]
    assert summary["entities"]["customers"]["merged"] == 2
    owners: dict[str, list[datetime]] = {}
    for o in snap.orders:
        owners.setdefault(o.customer_id, []).append(o.ordered_at)
    assert sorted(len(v) for v in owners.values()) == [1, 1, 1, 1, 1, 2, 2]  # 9 orders
    repeat = next(c for c in snap.customers if len(owners.get(c.customer_id, [])) == 2)
    assert repeat.created_at == min(owners[repeat.customer_id])  # first of both orders
    assert summary["derived"] == {
        "customers.created_at.as_of": 1,  # the customer of the quarantined order
        "customers.created_at.first_order": 7, "order_items.quantity": 11,
        "orders.currency": 9, "orders.total": 9, "products.currency": 7, "products.price": 7,
        "products.title": 7,
    }
    assert all(c.email == "" for c in snap.customers)
    # Two units of one product are two rows; the total adds the freight of each.
    o3 = next(o for o in snap.orders if o.total == 433.74)
    assert [i.quantity for i in snap.order_items if i.order_id == o3.order_id] == [1, 1]
    assert sorted(o.status for o in snap.orders) == [
        "cancelled", "cancelled", "delivered", "delivered", "delivered", "delivered",
        "delivered", "processing", "shipped"]  # canceled, unavailable and invoiced mapped
    [bad_order] = [q for q in result.quarantined if q.entity == "orders"]
    assert bad_order.reason == "delivered_at before shipped_at/ordered_at"
    assert {p.category for p in snap.products} >= {"Cama_mesa_banho", ""}


def test_an_export_without_its_mapping_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"required file customers\.csv or customers\.jsonl"):
        ingest_dir(RETAIL)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "transactions.csv").write_text((RETAIL / "online_retail_II.csv").read_text())
    with pytest.raises(DataError, match=r"missing required column\(s\) order_id, customer_id"):
        ingest_dir(flat)


@pytest.mark.parametrize(("text", "error"), [
    ("[orders.columns]\ntotl = 'x'\n", "unknown schema column"),
    ("[orderz]\nfile = 'x.csv'\n", "unknown field"),
    ("[orders]\ncancel_prefix = 'C'\n", "cancel_prefix applies to"),
    ("date_format = 'dd/mm/yyyy'\n", "no strptime directive"),
    ("[orders]\nfile = '../orders.csv'\n", "must be a name in DIR"),
    ("[orders]\nfile = 'orders.xlsx'\n", "must end in .csv or .jsonl"),
    ("[orders\n", "not valid TOML"),
])
def test_mapping_mistakes_are_errors(text: str, error: str) -> None:
    with pytest.raises(InvalidInput, match=error):
        parse_mapping(text)


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_flat_jsonl_with_status_segment_and_a_customers_file(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    line = {"order": "A1", "cust": "K1", "day": "03/01/2026", "sku": "S1", "name": "Soap",
            "qty": 2, "price": 3.5, "state": "complete", "tier": "VIP"}
    _write_jsonl(shop / "sales.jsonl", [
        line,
        {**line, "sku": "S2", "name": "Towel", "qty": 1, "price": 9.0, "state": "canceled"},
        {**line, "order": "A2", "day": "03/02/2026", "state": "cancelled"},
        {**line, "order": "A3", "cust": "K2", "day": "03/03/2026", "state": "shipped",
         "tier": "B2B"},
    ])
    (shop / "customers.csv").write_text(
        "customer_id,email,created_at\nK1,k1@example.com,2025-05-01\n")
    (shop / "mapping.toml").write_text(
        # The file-wide date_format would apply to customers.csv too: this one is per file.
        '[transactions]\nfile = "sales.jsonl"\ndate_format = "%m/%d/%Y"\n'
        '[transactions.columns]\norder_id = "order"\ncustomer_id = "cust"\nordered_at = "day"\n'
        'product_id = "sku"\ntitle = "name"\nquantity = "qty"\nunit_price = "price"\n'
        'status = "state"\nsegment = "tier"\n')
    result = _ingest(shop, currency="EUR")
    snap = result.snapshot
    _assert_every_row_accounted(result)
    assert result.quarantined == []
    assert {o.order_id: o.status for o in snap.orders} == {
        "A1": "delivered", "A2": "cancelled", "A3": "shipped"}
    # A cancelled line of an order that went through: an item, returned at once.
    returns = [(r.order_id, r.product_id, r.refund_amount) for r in snap.returns]
    assert returns == [("A1", "S2", 9.0)]
    customers = {c.customer_id: c for c in snap.customers}
    assert customers["K1"].email == "k1@example.com"  # the customers file wins over the lines
    assert customers["K1"].created_at == datetime(2025, 5, 1, tzinfo=UTC)
    assert customers["K2"].segment == "b2b" and customers["K2"].email == ""
    assert result.summary()["derived"].get("orders.status", 0) == 0
    assert snap.counts["customers"].read == 2  # one from its file, one from the lines


def test_a_file_the_mapping_names_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"sales\.csv \(the mapping's file for transactions\)"):
        ingest_dir(tmp_path, mapping=parse_mapping('[transactions]\nfile = "sales.csv"\n'))


def test_transactions_next_to_orders_is_ambiguous(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    shop.mkdir()
    (shop / "transactions.csv").write_text("order_id\n")
    (shop / "orders.csv").write_text("order_id\n")
    with pytest.raises(DataError, match="transactions and orders both exist"):
        ingest_dir(shop)


def test_a_merged_customer_id_still_names_the_kept_customer() -> None:
    from server.knowledge.graph.facts import Facts

    snapshot = ingest_dir(OLIST, mapping=load_mapping(OLIST / "mapping.toml"),
                          currency="BRL").snapshot
    merges = [m for m in snapshot.merges if m.entity == "customers"]
    assert merges, "the fixture has customers that one person's account id folds together"
    facts = Facts(snapshot)
    for m in merges:
        assert facts.customer(m.merged_id).customer_id == m.kept_id
        assert facts.customer_orders(m.merged_id) == facts.customer_orders(m.kept_id)
        assert facts.canonical_customer(m.kept_id) == m.kept_id
