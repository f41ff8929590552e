"""The demo shop generator: deterministic, consistent, and carrying the purchase signal."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from server.demo.generate import AS_OF, HEADERS, generate
from server.errors import InvalidInput
from server.knowledge.shop.ingest import IngestResult, ingest_dir
from server.knowledge.shop.schema import ENTITIES, Snapshot


@pytest.fixture(scope="module")
def xs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], IngestResult]:
    out = tmp_path_factory.mktemp("demo") / "xs"
    counts = generate(out, "XS", seed=7)
    return out, counts, ingest_dir(out)


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_generation_is_deterministic_per_seed(
    tmp_path: Path, xs: tuple[Path, dict[str, int], IngestResult]
) -> None:
    out, counts, result = xs
    again = tmp_path / "again"
    assert generate(again, "XS", seed=7) == counts
    assert _digest(again) == _digest(out)
    assert ingest_dir(again).snapshot.snapshot_id == result.snapshot.snapshot_id
    other = tmp_path / "other"
    generate(other, "XS", seed=8)
    assert ingest_dir(other).snapshot.snapshot_id != result.snapshot.snapshot_id


def test_rows_written_match_counts_and_all_are_accepted(
    xs: tuple[Path, dict[str, int], IngestResult],
) -> None:
    out, counts, result = xs
    snap = result.snapshot
    assert set(counts) == set(ENTITIES)
    assert result.quarantined == [] and snap.merges == []
    for entity in ENTITIES:
        c = snap.counts[entity]
        assert c.read == c.accepted == counts[entity] == len(getattr(snap, entity))
    assert counts["customers"] == 200 and counts["order_items"] > 2_000
    meta = json.loads((out / "shop.json").read_text())
    assert meta["as_of"] == "2026-11-15T12:00:00Z" and meta["dirty"] is None
    assert snap.as_of == AS_OF
    header = (out / "orders.csv").read_text().splitlines()[0]
    assert header.split(",") == HEADERS["orders"]


def test_order_dates_and_statuses_are_consistent(
    xs: tuple[Path, dict[str, int], IngestResult],
) -> None:
    snap = xs[2].snapshot
    statuses: dict[str, int] = defaultdict(int)
    created = {c.customer_id: c.created_at for c in snap.customers}
    for o in snap.orders:
        statuses[o.status] += 1
        assert created[o.customer_id] <= o.ordered_at <= AS_OF
        if o.status in ("delivered", "returned"):
            assert o.shipped_at is not None and o.delivered_at is not None
            assert o.ordered_at <= o.shipped_at <= o.delivered_at <= AS_OF
        elif o.status == "shipped":
            assert o.shipped_at is not None and o.shipped_at <= AS_OF and o.delivered_at is None
        else:
            assert o.shipped_at is None and o.delivered_at is None
    assert all(statuses[s] > 0 for s in ("delivered", "returned", "cancelled", "shipped"))
    totals: dict[str, float] = defaultdict(float)
    for i in snap.order_items:
        totals[i.order_id] += i.quantity * i.unit_price
    assert all(abs(totals[o.order_id] - o.total) < 0.011 for o in snap.orders)
    delivered = {o.order_id: o.delivered_at for o in snap.orders}
    for r in snap.returns:
        at = delivered[r.order_id]
        assert at is not None and at <= r.returned_at <= AS_OF
        assert (r.refund_amount == 0) == (r.refund_status == "rejected")
    products = {p.product_id: p for p in snap.products}
    for w in snap.warranties:
        assert w.starts_at == delivered[w.order_id] and w.expires_at > w.starts_at
        assert products[w.product_id].warranty_months > 0
    assert {w.kind for w in snap.warranties} == {"manufacturer", "extended"}


def test_catalog_complements_consumables_policies_and_articles(
    xs: tuple[Path, dict[str, int], IngestResult],
) -> None:
    snap = xs[2].snapshot
    products = {p.product_id: p for p in snap.products}
    assert len({p.category.split("/")[0] for p in snap.products}) == 10
    assert all(c in products for p in snap.products for c in p.complements)
    phone = next(p for p in snap.products if p.category == "Electronics/Phones")
    comp = [products[c] for c in phone.complements]
    assert any(c.category == "Electronics/Phones/Cases" and phone.title.split(" Smartphone")[0]
               in c.title for c in comp)
    assert {p.replenish_days for p in snap.products if "Coffee Beans" in p.title} == {21}
    assert all(p.currency == "EUR" for p in snap.products)
    params = {p.policy_id: p.params for p in snap.policies}
    assert params["pol-returns"]["return_window_days"] == 30
    assert params["pol-returns"]["vip_return_window_days"] == 60
    assert params["pol-refunds"]["refund_auto_limit"] == 150.0
    assert len(snap.articles) >= 40
    assert all("## " in a.body and a.tags for a in snap.articles)
    assert any(a.product_ids for a in snap.articles)
    segments = {c.segment for c in snap.customers}
    assert segments == {"standard", "vip", "b2b"}


def _histories(snap: Snapshot) -> dict[str, list[set[str]]]:
    at = {o.order_id: (o.customer_id, o.ordered_at) for o in snap.orders}
    baskets: dict[str, set[str]] = defaultdict(set)
    for i in snap.order_items:
        baskets[i.order_id].add(i.product_id)
    per: dict[str, list[tuple[datetime, set[str]]]] = defaultdict(list)
    for oid, items in baskets.items():
        cid, t = at[oid]
        per[cid].append((t, items))
    return {cid: [b for _, b in sorted(h, key=lambda x: x[0])] for cid, h in per.items()}


def test_purchase_signal_complements_and_replenishment(
    xs: tuple[Path, dict[str, int], IngestResult],
) -> None:
    snap = xs[2].snapshot
    products = {p.product_id: p for p in snap.products}
    mains = later = cons = rebought = 0
    for baskets in _histories(snap).values():
        for k, items in enumerate(baskets):
            future = set().union(*baskets[k + 1 :])
            for pid in items:
                p = products[pid]
                if p.complements and p.warranty_months and not p.replenish_days:
                    mains += 1
                    later += bool(future & set(p.complements))
                if p.replenish_days:
                    cons += 1
                    rebought += pid in future
    # Most buyers of a main item come back for one of *its* complements; consumables
    # are bought again. A shop without the signal would sit far below these rates.
    assert mains > 50 and later / mains > 0.4
    assert cons > 200 and rebought / cons > 0.4


def test_dirty_shop_quarantines_and_merges_exactly_the_injected_rows(tmp_path: Path) -> None:
    out = tmp_path / "dirty"
    generate(out, "XS", seed=7, dirty=True)
    manifest = json.loads((out / "shop.json").read_text())["dirty"]
    result = ingest_dir(out, tmp_path / "q")
    summary = result.summary()
    assert summary["totals"]["quarantined"] == manifest["bad_rows"] == len(result.quarantined)
    assert summary["totals"]["merged"] == manifest["duplicates"] == len(result.snapshot.merges)
    by_entity = {e: c["quarantined"] for e, c in summary["entities"].items() if c["quarantined"]}
    assert by_entity == manifest["bad_by_entity"]
    for c in summary["entities"].values():
        assert c["read"] == c["accepted"] + c["quarantined"] + c["merged"]
    assert {m.rule for m in result.snapshot.merges} == {
        "same_email", "same_phone", "same_sku", "same_title_brand",
    }
    clean = ingest_dir(generate_path(tmp_path / "clean")).snapshot
    assert result.snapshot.snapshot_id == clean.snapshot_id
    assert result.quarantine_path is not None
    assert len(result.quarantine_path.read_text().splitlines()) == manifest["bad_rows"]


def generate_path(out: Path) -> Path:
    generate(out, "XS", seed=7)
    return out


def test_unknown_size_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown demo size"):
        generate(tmp_path, "XL")
