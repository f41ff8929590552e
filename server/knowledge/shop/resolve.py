"""Entity resolution: fold duplicate customers and products into one kept record.

Customers are the same person when they share an account id (an export's own key
for the person, like Olist's `customer_unique_id` behind its per-order customer ids),
a normalized email or a normalized phone; products are the same item when they
share a SKU (letters and digits, case folded) or the same normalized title and
brand. The kept record is the earliest created customer (ties: first seen) and the
first seen product. Each fold is one
`Merge`; the returned id map rewrites references (orders, items, complements...)
from the merged id to the kept id. Resolution is greedy in that order: a record
joins the first kept record one of its keys points at, and its own keys then point
there too, so chains (A~B by email, B~C by phone) end up in one record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from server.knowledge.shop.normalize import match_key, sku_key
from server.knowledge.shop.schema import Customer, Merge, Product


def resolve_customers(
    customers: list[Customer], accounts: Sequence[str] = (),
) -> tuple[list[Customer], list[Merge], dict[str, str]]:
    """Return (kept customers in first-seen order, merges, merged id -> kept id).

    `accounts[i]` is customer i's account id ("" or absent: none)."""
    order = sorted(range(len(customers)), key=lambda i: (customers[i].created_at, i))
    kept: dict[str, Customer] = {}
    by_id: dict[str, str] = {}
    by_account: dict[str, str] = {}
    by_email: dict[str, str] = {}
    by_phone: dict[str, str] = {}
    merges: list[Merge] = []
    id_map: dict[str, str] = {}
    for i in order:
        c = customers[i]
        account = accounts[i] if i < len(accounts) else ""
        target, rule = None, ""
        if c.customer_id in by_id:
            target, rule = by_id[c.customer_id], "same_id"
        elif account and account in by_account:
            target, rule = by_account[account], "same_account"
        elif c.email and c.email in by_email:
            target, rule = by_email[c.email], "same_email"
        elif c.phone and c.phone in by_phone:
            target, rule = by_phone[c.phone], "same_phone"
        if target is None:
            kept[c.customer_id] = c
            target = c.customer_id
        else:
            merges.append(Merge("customers", target, c.customer_id, rule))
            if c.customer_id != target:
                id_map[c.customer_id] = target
            k = kept[target]
            # Fill what the kept record lacks, so a phone seen only on the duplicate
            # still finds the customer.
            if (not k.phone and c.phone) or (not k.name and c.name):
                kept[target] = k = msgspec.structs.replace(
                    k, phone=k.phone or c.phone, name=k.name or c.name
                )
            if k.marketing_opt_in and not c.marketing_opt_in:  # an opt-out on any copy wins
                kept[target] = msgspec.structs.replace(k, marketing_opt_in=False)
        by_id.setdefault(c.customer_id, target)
        if account:
            by_account.setdefault(account, target)
        if c.email:
            by_email.setdefault(c.email, target)
        if c.phone:
            by_phone.setdefault(c.phone, target)
    first_seen = {c.customer_id: n for n, c in reversed(list(enumerate(customers)))}
    ordered = sorted(kept.values(), key=lambda c: first_seen[c.customer_id])
    return ordered, merges, id_map


def resolve_products(
    products: list[Product],
) -> tuple[list[Product], list[Merge], dict[str, str]]:
    """Return (kept products in first-seen order, merges, merged id -> kept id)."""
    kept: dict[str, Product] = {}
    by_sku: dict[str, str] = {}
    by_title_brand: dict[tuple[str, str], str] = {}
    merges: list[Merge] = []
    id_map: dict[str, str] = {}
    for p in products:
        sku = sku_key(p.product_id)
        tb = (match_key(p.title), match_key(p.brand)) if p.brand.strip() else None
        target, rule = None, ""
        if sku in by_sku:
            target, rule = by_sku[sku], "same_sku"
        elif tb is not None and tb in by_title_brand:
            target, rule = by_title_brand[tb], "same_title_brand"
        if target is None:
            kept[p.product_id] = p
            target = p.product_id
        else:
            merges.append(Merge("products", target, p.product_id, rule))
            if p.product_id != target:
                id_map[p.product_id] = target
            k = kept[target]
            if p.complements:
                extra = tuple(x for x in p.complements if x not in k.complements)
                if extra:
                    kept[target] = msgspec.structs.replace(k, complements=k.complements + extra)
        by_sku.setdefault(sku, target)
        if tb is not None:
            by_title_brand.setdefault(tb, target)
    return list(kept.values()), merges, id_map


def remap(
    ids: Iterable[str], id_map: dict[str, str], known: set[str], own: str = ""
) -> tuple[tuple[str, ...], int]:
    """Rewrite ids through `id_map`, drop unknown ids, self references and repeats.

    Returns the new tuple and how many references were dropped.
    """
    out: dict[str, None] = {}
    dropped = 0
    for raw in ids:
        pid = id_map.get(raw, raw)
        if pid in known and pid != own:
            out.setdefault(pid, None)
        elif pid not in known:
            dropped += 1
    return tuple(out), dropped
