"""The facts guided flows check, computed from the knowledge layer's order facts.

Flow files branch on these names (docs/flows.md lists them): `order_status`,
`days_since_shipping`, `days_since_delivery`, `within_return_window` (some item of the
order can still be returned) and `warranty_active` (the item, or else some item of the
order, has an active warranty). A fact that does not apply (no delivery date yet) is
left out, so a flow takes its default branch rather than a guessed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.knowledge.graph.facts import Eligibility, OrderFacts, WarrantyFacts


def order_flow_facts(order: OrderFacts, now: datetime, *,
                     eligibility: Sequence[Eligibility] = (),
                     warranties: Sequence[WarrantyFacts] = (),
                     product_id: str = "") -> dict[str, Any]:
    """Facts of one linked order (and item, when `product_id` is given) as of `now`."""
    facts: dict[str, Any] = {"order_status": order.status}
    if order.shipped_at is not None:
        facts["days_since_shipping"] = max(0, (now - order.shipped_at).days)
    if order.delivered_at is not None:
        facts["days_since_delivery"] = max(0, (now - order.delivered_at).days)
    mine = [e for e in eligibility if e.order_id == order.order_id
            and (not product_id or e.product_id == product_id)]
    if mine:
        facts["within_return_window"] = any(e.eligible for e in mine)
    covers = [w for w in warranties if w.order_id == order.order_id
              and (not product_id or w.product_id == product_id)]
    if covers:
        facts["warranty_active"] = any(w.active for w in covers)
    return facts
