"""Dirt for the demo shop: bad rows, duplicates and messy-but-valid spellings.

`inject` edits the generated tables in place so that ingestion has something to do:
one bad row per quarantine rule (each must be quarantined), duplicate customers and
products (each must be merged, and nothing references them, so the resolved data is
the clean shop's), and valid values written the messy way real exports write them
("€1,299.00", "Delivered", "electronics > phones", offsets). Ingesting a dirty shop
therefore gives the same snapshot id as the clean shop of the same seed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

Table = list[list[Any]]


class Uniform(Protocol):
    def u(self) -> float: ...


def _messy_time(iso: str) -> str:
    """The same instant written with a +02:00 offset and a space instead of 'T'."""
    dt = datetime.fromisoformat(iso).astimezone(timezone(timedelta(hours=2)))
    return dt.strftime("%Y-%m-%d %H:%M:%S%z")


def inject(tables: dict[str, Table], articles: list[dict[str, Any]], d: Uniform) -> dict[str, Any]:
    """Add dirt; returns the manifest {"bad_rows", "duplicates", "bad_by_entity"}."""
    cust, prod, orders = tables["customers"], tables["products"], tables["orders"]
    items = tables["order_items"]
    pick = lambda rows: rows[int(d.u() * len(rows))]  # noqa: E731
    cid, pid, oid = pick(cust)[0], pick(prod)[0], pick(orders)[0]
    in_order = {r[1] for r in items if r[0] == oid}
    not_in_order = next(p[0] for p in prod if p[0] not in in_order)
    # Duplicates, appended so the originals are first seen and created earlier.
    late = "2026-11-14T09:00:00Z"
    with_phone = next(c for c in cust if c[3] and not c[0].startswith("C9"))
    digits = "".join(ch for ch in with_phone[3] if ch.isdigit())
    dups = [
        ["C8000001", "", f"  {cust[0][2].upper()} ", "", "standard", late],
        ["C8000002", cust[1][1], cust[1][2].title(), "", "vip", late],
        [
            "C8000003",
            with_phone[1],
            "other.address@example.org",
            f"00{digits[:5]}-{digits[5:]}",
            "standard",
            late,
        ],
    ]
    cust.extend(dups)
    first = prod[0]
    sku_dup = [first[0].lower().replace("-", " "), *first[1:]]
    title_dup = ["ZZZ-9001", first[1].upper().replace(" ", "&nbsp;", 1), first[2], *first[3:]]
    prod.extend([sku_dup, title_dup])

    # Messy spellings of valid values (normalization must map them back).
    for row in cust[2:40:7]:
        row[1] = f" {row[1].replace(' ', '&#32;', 1)}  "
        row[2] = row[2].upper()
    for row in prod[1:30:5]:
        row[3] = " > ".join(
            lv if lv[1:].lower() != lv[1:] else lv.lower() for lv in row[3].split("/")
        )
        row[4] = f"€{float(row[4]):,.2f}"
        row[5] = row[5].lower()
    for row in orders[:60:6]:
        if not row[0].startswith("O9"):
            row[2] = _messy_time(row[2])
            row[3] = row[3].upper() if d.u() < 0.5 else row[3].capitalize()
    for row in items[:40:8]:
        row[3] = f"{row[3]} EUR"
    now = "2026-11-01T10:00:00Z"
    bad: dict[str, list[list[Any]]] = {
        "customers": [
            ["C9000001", "Broken Email", "not-an-email", "", "standard", now],
            ["C9000002", "Bad Date", "bad.date@example.com", "", "standard", "31/02/2026"],
            ["C9000003", "Short Phone", "short.phone@example.com", "12", "standard", now],
        ],
        "products": [
            ["BAD-0001", "Broken Product", "Acme", "Misc", "-5.00", "EUR", "true", 0, "", "", 0],
            ["BAD-0002", "Odd Currency", "Acme", "Misc", "12.00", "XYZ", "true", 0, "", "", 0],
        ],
        "orders": [
            ["O9000001", "C9999999", now, "delivered", now, now, "10.00", "EUR"],
            ["O9000002", cid, now, "teleported", "", "", "10.00", "EUR"],
            ["O9000003", cid, now, "delivered", "2026-11-05T10:00:00Z", now, "10.00", "EUR"],
        ],
        "order_items": [
            [oid, "NOPE-0001", 1, "9.99"],
            ["O9999999", pid, 1, "9.99"],
            [oid, pid, 0, "9.99"],
        ],
        "returns": [
            [oid, not_in_order, now, "Changed my mind", "requested", "9.99"],
            [oid, sorted(in_order)[0], now, "Changed my mind", "maybe", "9.99"],
        ],
        "warranties": [
            ["W9000001", cid, oid, "NOPE-0001", now, "2028-11-01T10:00:00Z", "manufacturer", ""],
            ["W9000002", cid, "O9999999", pid, now, "2028-11-01T10:00:00Z", "manufacturer", ""],
        ],
    }
    for name, rows in bad.items():
        for row in rows:
            tables[name].insert(int(d.u() * (len(tables[name]) + 1)), row)
    articles.append({"article_id": "kb-empty", "title": "Draft", "body": "   "})

    count = sum(len(v) for v in bad.values()) + 1
    return {
        "bad_rows": count,
        "duplicates": len(dups) + 2,
        "bad_by_entity": {**{k: len(v) for k, v in bad.items()}, "articles": 1},
    }
