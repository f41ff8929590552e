"""The demo shop generator: a seeded, realistic shop data directory (Lumora, EUR).

`generate(out_dir, size, seed)` writes customers, orders, items, returns and
warranties simulated against the fixed catalog (demo_catalog.py), the policies and
help articles (demo_guides.py, demo_articles.py), and shop.json with the pinned
`as_of`. Each customer shops over the ~18 months before `as_of`; a basket is driven
by the customer's category affinities and brand loyalty, by complements of what they
bought before (the case for *their* phone, the ink for *their* printer), by re-buying
consumables at a personal cadence, and by a popularity tail. `dirty=True` then adds
bad rows and duplicates for the ingestion tests (demo_dirty.py).
"""

from __future__ import annotations

import bisect
import csv
import heapq
import itertools
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from server.demo.articles import ARTICLES, unwrap
from server.demo.catalog import (
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    RETURN_REASONS,
    TOP_CATEGORIES,
    ProductSpec,
    build_catalog,
)
from server.demo.dirty import inject
from server.demo.guides import GUIDES, POLICIES
from server.errors import InvalidInput

AS_OF = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
SIZES = {"XS": 200, "S": 2_000, "M": 20_000, "L": 100_000}
DAY = 86_400.0
HISTORY_DAYS = 540  # orders span ~18 months before as_of
KIND_WEIGHT = {"main": 1.0, "filler": 0.7, "consumable": 0.8, "accessory": 0.12}
SEGMENT_GAP_DAYS = {"standard": 150.0, "vip": 60.0, "b2b": 90.0}

Table = list[list[Any]]
HEADERS = {
    "customers": ["customer_id", "name", "email", "phone", "segment", "created_at"],
    "products": [
        "product_id",
        "title",
        "brand",
        "category",
        "price",
        "currency",
        "in_stock",
        "warranty_months",
        "description",
        "complements",
        "replenish_days",
    ],
    "orders": [
        "order_id",
        "customer_id",
        "ordered_at",
        "status",
        "shipped_at",
        "delivered_at",
        "total",
        "currency",
    ],
    "order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "returns": [
        "order_id",
        "product_id",
        "returned_at",
        "reason",
        "refund_status",
        "refund_amount",
    ],
    "warranties": [
        "warranty_id",
        "customer_id",
        "order_id",
        "product_id",
        "starts_at",
        "expires_at",
        "kind",
        "claim_status",
    ],
}


class _Draws:
    """Uniform and normal variates drawn from one numpy Generator in blocks (fast scalars)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._u: list[float] = []
        self._n: list[float] = []

    def u(self) -> float:
        if not self._u:
            self._u = self.rng.random(1 << 16).tolist()
        return self._u.pop()

    def normal(self) -> float:
        if not self._n:
            self._n = self.rng.standard_normal(1 << 14).tolist()
        return self._n.pop()

    def pick(self, cum: list[float]) -> int:
        return bisect.bisect_right(cum, self.u() * cum[-1])


@dataclass
class _Index:
    """Catalog lookups the simulation needs, built once per shop."""

    specs: list[ProductSpec]
    by_top: list[list[int]]  # product indexes per top category
    top_cum: list[list[float]]  # cumulative pick weights aligned with by_top
    brands: list[list[str]]  # brands per top category
    brand_items: dict[tuple[int, str], tuple[list[int], list[float]]]
    global_cum: list[float]
    complements: list[list[int]]


def _index(specs: list[ProductSpec], rng: np.random.Generator) -> _Index:
    pos = {p.product_id: i for i, p in enumerate(specs)}
    # Popularity: a seeded Zipf-like weight so some items sell far more than others.
    ranks = rng.permutation(len(specs)) + 1
    pop = [KIND_WEIGHT[p.kind] / float(r) ** 0.7 for p, r in zip(specs, ranks, strict=True)]
    by_top: list[list[int]] = [[] for _ in TOP_CATEGORIES]
    top_pos = {t: k for k, t in enumerate(TOP_CATEGORIES)}
    for i, p in enumerate(specs):
        by_top[top_pos[p.top]].append(i)
    top_cum = [list(np.cumsum([pop[i] for i in idx])) for idx in by_top]
    brands, brand_items = [], {}
    for k, idx in enumerate(by_top):
        names = sorted({specs[i].brand for i in idx if specs[i].kind != "accessory"})
        brands.append(names)
        for b in names:
            items = [i for i in idx if specs[i].brand == b and specs[i].kind != "accessory"]
            brand_items[(k, b)] = (items, list(np.cumsum([pop[i] for i in items])))
    return _Index(
        specs=specs,
        by_top=by_top,
        top_cum=top_cum,
        brands=brands,
        brand_items=brand_items,
        global_cum=list(np.cumsum(pop)),
        complements=[[pos[c] for c in p.complements] for p in specs],
    )


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def _add_months(ts: float, months: int) -> float:
    dt = datetime.fromtimestamp(int(ts), UTC)
    y, m = divmod(dt.month - 1 + months, 12)
    day = min(dt.day, 28)  # clamp: the 28th exists in every month
    return dt.replace(year=dt.year + y, month=m + 1, day=day).timestamp()


class _Shop:
    """The simulation state: output tables plus running ids."""

    def __init__(self, idx: _Index, draws: _Draws, as_of: float) -> None:
        self.idx, self.d, self.as_of = idx, draws, as_of
        self.t: dict[str, Table] = {name: [] for name in HEADERS}
        self.n_orders = 0
        self.n_warranties = 0

    def customer(self, k: int, affinity: list[float]) -> None:
        d, idx = self.d, self.idx
        u = d.u()
        segment = "vip" if u < 0.03 else "b2b" if u < 0.10 else "standard"
        cid = f"C{k + 1:06d}"
        first, last = (
            FIRST_NAMES[int(d.u() * len(FIRST_NAMES))],
            LAST_NAMES[int(d.u() * len(LAST_NAMES))],
        )
        created = self.as_of - (5 + d.u() * 895) * DAY
        phone = f"+49 15{k % 10} {1000000 + k:08d}" if d.u() < 0.7 else ""
        email = f"{first}.{last}{k + 1}@{EMAIL_DOMAINS[k % len(EMAIL_DOMAINS)]}".lower()
        name = f"{first} {last}" + (" GmbH" if segment == "b2b" else "")
        self.t["customers"].append([cid, name, email, phone, segment, _iso(created)])

        cum = list(itertools.accumulate(affinity))
        loyal = {k2: names[int(d.u() * len(names))] for k2, names in enumerate(idx.brands)}
        loyalty = 0.2 + 0.6 * d.u()
        cadence = math.exp(0.12 * d.normal())
        gap = SEGMENT_GAP_DAYS[segment] * math.exp(0.4 * d.normal()) * DAY
        start = max(created, self.as_of - HISTORY_DAYS * DAY)
        free: list[float] = []
        ts = start + d.u() * gap
        while ts < self.as_of:
            free.append(ts)
            ts += -math.log(1.0 - d.u()) * gap
        due: list[tuple[float, int]] = []  # (due time, consumable) re-buy heap
        wishes: dict[int, float] = {}  # complement -> wished since
        fi = 0
        while True:
            nxt_free = free[fi] if fi < len(free) else math.inf
            nxt_due = due[0][0] if due else math.inf
            now = min(nxt_free, nxt_due)
            if now >= self.as_of:
                break
            shopping = now == nxt_free
            fi += shopping
            basket: dict[int, int] = {}
            while due and due[0][0] <= now + 7 * DAY:
                _, item = heapq.heappop(due)
                if d.u() < 0.6:  # otherwise the customer lapses on this consumable
                    basket[item] = 1
            for item, since in list(wishes.items()):
                if now - since > 240 * DAY:
                    del wishes[item]
                elif d.u() < (0.55 if shopping else 0.25):
                    basket[item] = 1
                    del wishes[item]
            if shopping:
                for _ in range(1 + (d.u() < 0.45) + (d.u() < 0.15) + (segment == "b2b")):
                    item = self._pick(d.pick(cum), loyal, loyalty)
                    basket.setdefault(item, 1)
                    for comp in idx.complements[item]:
                        if d.u() < 0.12:
                            basket.setdefault(comp, 1)
                        elif d.u() < 0.45:
                            wishes.setdefault(comp, now)
            if not basket:
                continue
            for item in basket:
                rd = idx.specs[item].replenish_days
                if rd:
                    # Two packs last twice as long, except for businesses (more users).
                    qty = 2 + int(d.u() * 5) if segment == "b2b" else 1 + (d.u() < 0.3)
                    basket[item] = qty
                    lasts = rd * (1 if segment == "b2b" else qty) * cadence
                    nxt = now + lasts * (1.0 + 0.12 * d.normal()) * DAY
                    heapq.heappush(due, (max(nxt, now + DAY), item))
                    wishes.pop(item, None)
            self._order(cid, segment, now, basket)

    def _pick(self, top: int, loyal: dict[int, str], loyalty: float) -> int:
        d, idx = self.d, self.idx
        if d.u() < 0.08:  # popularity tail: anything, weighted by global popularity
            return d.pick(idx.global_cum)
        if d.u() < loyalty:
            items, cum = idx.brand_items[(top, loyal[top])]
            return items[d.pick(cum)]
        return idx.by_top[top][d.pick(idx.top_cum[top])]

    def _order(self, cid: str, segment: str, at: float, basket: dict[int, int]) -> None:
        d, specs = self.d, self.idx.specs
        self.n_orders += 1
        oid = f"O{self.n_orders:07d}"
        lines = []
        for item, qty in basket.items():
            p = specs[item]
            price = round(p.price * 0.9, 2) if d.u() < 0.12 else p.price
            lines.append((item, qty, price))
            self.t["order_items"].append([oid, p.product_id, qty, f"{price:.2f}"])
        total = sum(q * pr for _, q, pr in lines)
        status, shipped, delivered = "processing", None, None
        if d.u() < 0.025:
            status = "cancelled"
        else:
            s_at = at + (0.2 + 1.8 * d.u()) * DAY
            if s_at <= self.as_of:
                status, shipped = "shipped", s_at
                v_at = s_at + (1.0 + 3.0 * d.u()) * DAY
                if v_at <= self.as_of:
                    status, delivered = "delivered", v_at
        returned: set[int] = set()
        if delivered is not None and d.u() < 0.06:
            item, qty, price = lines[int(d.u() * len(lines))]
            if self._return(oid, segment, delivered, item, qty, price):
                returned.add(item)
                if len(lines) == 1:
                    status = "returned"
        self.t["orders"].append(
            [
                oid,
                cid,
                _iso(at),
                status,
                _iso(shipped) if shipped else "",
                _iso(delivered) if delivered else "",
                f"{total:.2f}",
                "EUR",
            ]
        )
        if delivered is not None:
            for item, _, _ in lines:
                if specs[item].warranty_months and item not in returned:
                    self._warranty(cid, oid, item, delivered)

    def _return(
        self, oid: str, segment: str, delivered: float, item: int, qty: int, price: float
    ) -> bool:
        d = self.d
        at = delivered + (1.0 + 40.0 * d.u() ** 1.5) * DAY
        if at > self.as_of:
            return False
        window = 60 if segment == "vip" else 30
        age = (self.as_of - at) / DAY
        if at - delivered > window * DAY or d.u() < 0.06:
            status = "rejected"
        elif age < 2:
            status = "requested"
        elif age < 6:
            status = "approved"
        else:
            status = "refunded"
        amount = 0.0 if status == "rejected" else qty * price
        reason = RETURN_REASONS[int(d.u() * len(RETURN_REASONS))]
        spec = self.idx.specs[item]
        self.t["returns"].append([oid, spec.product_id, _iso(at), reason, status, f"{amount:.2f}"])
        return True

    def _warranty(self, cid: str, oid: str, item: int, starts: float) -> None:
        d, spec = self.d, self.idx.specs[item]
        self.n_warranties += 1
        extended = spec.warranty_months >= 24 and d.u() < 0.12
        months = spec.warranty_months + (24 if extended else 0)
        claim = ""
        if d.u() < 0.05:
            u = d.u()
            recent = self.as_of - starts < 30 * DAY
            claim = "open" if recent or u < 0.15 else "approved" if u < 0.75 else "rejected"
        self.t["warranties"].append(
            [
                f"W{self.n_warranties:07d}",
                cid,
                oid,
                spec.product_id,
                _iso(starts),
                _iso(_add_months(starts, months)),
                "extended" if extended else "manufacturer",
                claim,
            ]
        )


def _product_rows(specs: list[ProductSpec]) -> Table:
    return [
        [
            p.product_id,
            p.title,
            p.brand,
            p.category,
            f"{p.price:.2f}",
            "EUR",
            "false" if i % 23 == 11 else "true",
            p.warranty_months,
            p.description,
            "|".join(p.complements),
            p.replenish_days,
        ]
        for i, p in enumerate(specs)
    ]


def _articles(specs: list[ProductSpec]) -> list[dict[str, Any]]:
    out = []
    for aid, title, tags, cats, body in ARTICLES + GUIDES:
        linked = [p for p in specs if any(p.category.startswith(c) for c in cats)]
        linked.sort(key=lambda p: (p.kind != "main", p.product_id))
        out.append(
            {
                "article_id": aid,
                "title": title,
                "body": unwrap(body),
                "tags": list(tags),
                "product_ids": [p.product_id for p in linked[:4]],
                "categories": list(cats),
                "locale": "en",
                "doc_type": "article",
            }
        )
    return out


def _policies() -> list[dict[str, Any]]:
    return [
        {
            "policy_id": pid,
            "title": title,
            "text": unwrap(text),
            "applies_to": applies,
            "version": "2026-01",
            "params": params,
        }
        for pid, title, applies, params, text in POLICIES
    ]


def write_table(path: Path, header: list[str], rows: Table) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    enc = msgspec.json.Encoder()
    with path.open("wb") as fh:
        for row in rows:
            fh.write(enc.encode(row) + b"\n")


def generate(
    out_dir: Path, size: str = "S", seed: int = 7, *, dirty: bool = False
) -> dict[str, int]:
    """Write the demo shop into `out_dir`; returns rows written per entity file."""
    if size not in SIZES:
        raise InvalidInput(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    specs = build_catalog()
    shop = _Shop(_index(specs, rng), _Draws(rng), AS_OF.timestamp())
    n = SIZES[size]
    affinity = rng.dirichlet(np.full(len(TOP_CATEGORIES), 0.35), size=n).tolist()
    for k in range(n):
        shop.customer(k, affinity[k])
    tables = shop.t
    tables["products"] = _product_rows(specs)
    articles, policies = _articles(specs), _policies()
    manifest: dict[str, Any] = {"bad_rows": 0, "duplicates": 0}
    if dirty:
        manifest = inject(tables, articles, _Draws(np.random.default_rng(seed + 1)))
    for name, header in HEADERS.items():
        write_table(out_dir / f"{name}.csv", header, tables[name])
    write_jsonl(out_dir / "articles.jsonl", articles)
    write_jsonl(out_dir / "policies.jsonl", policies)
    counts = {name: len(tables[name]) for name in HEADERS}
    counts["articles"], counts["policies"] = len(articles), len(policies)
    meta = {
        "name": "Lumora",
        "currency": "EUR",
        "as_of": AS_OF.isoformat().replace("+00:00", "Z"),
        "size": size,
        "seed": seed,
        "rows": counts,
        "dirty": manifest if dirty else None,
    }
    (out_dir / "shop.json").write_bytes(msgspec.json.format(msgspec.json.encode(meta)) + b"\n")
    return counts
