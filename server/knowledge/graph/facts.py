"""Facts the assistant may state about a customer: orders, return eligibility, warranties.

Everything is computed from one Snapshot against one clock: the snapshot's `as_of`
(the demo shop pins it) or an explicit `now`. Results are msgspec Structs; the API
layer converts them to protobuf. Unknown ids raise NotFound.

Return eligibility follows the policy in force for the product's category: among the
policies with `applies_to` "*" or a prefix of the category, the most specific one that
says anything about returns wins, at its highest version. The window is
`<segment>_return_window_days` when the policy sets one for the customer's segment,
else `return_window_days`, counted in calendar days from delivery; the last day is
inclusive (deadline = end of that day, UTC). A policy with `returnable = false` (or a
`non_returnable_categories` list of category prefixes) makes the item non-returnable;
`opened_consumables_returnable = false` adds an "only if unopened" caveat for
consumables (the data does not say whether an item was opened).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import msgspec

from server.errors import NotFound, short
from server.knowledge.graph.graph import category_key
from server.knowledge.shop.schema import (
    Customer,
    Order,
    OrderItem,
    Policy,
    Product,
    Return,
    Snapshot,
    Warranty,
)

RETURN_PARAMS = ("return_window_days", "returnable", "non_returnable_categories")
OPEN_REFUND_STATUSES = ("requested", "approved")


class CustomerFacts(msgspec.Struct, frozen=True):
    customer_id: str
    name: str
    segment: str
    created_at: datetime
    order_count: int
    open_refund_count: int


class ProductFacts(msgspec.Struct, frozen=True):
    product_id: str
    title: str
    brand: str
    category: str
    price: float
    currency: str
    in_stock: bool
    warranty_months: int
    replenish_days: int
    complements: tuple[str, ...]


class OrderItemFacts(msgspec.Struct, frozen=True):
    product_id: str
    title: str
    quantity: int
    unit_price: float
    returned: bool


class OrderFacts(msgspec.Struct, frozen=True):
    order_id: str
    status: str
    ordered_at: datetime
    shipped_at: datetime | None
    delivered_at: datetime | None
    total: float
    currency: str
    items: list[OrderItemFacts]


class Eligibility(msgspec.Struct, frozen=True):
    order_id: str
    product_id: str
    eligible: bool
    code: str  # eligible | window_expired | already_returned | not_delivered | cancelled
    #            | non_returnable | no_policy
    reason: str
    deadline: datetime | None
    window_days: int | None
    policy_id: str
    policy_version: str


class WarrantyFacts(msgspec.Struct, frozen=True):
    warranty_id: str
    order_id: str
    product_id: str
    product_title: str
    kind: str
    starts_at: datetime
    expires_at: datetime
    active: bool
    days_left: int
    claim_status: str


class RefundFacts(msgspec.Struct, frozen=True):
    order_id: str
    product_id: str
    product_title: str
    returned_at: datetime
    reason: str
    refund_status: str
    refund_amount: float


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    # "10" > "9", "2.1" > "2": compare numeric runs as numbers.
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|\D+", version))


def _end_of_day(day: datetime) -> datetime:
    return datetime.combine(day.date(), time.max, tzinfo=UTC)


class Facts:
    """Indexed, read-only view of one snapshot for fact questions."""

    def __init__(self, snapshot: Snapshot, now: datetime | None = None) -> None:
        self.snapshot = snapshot
        self.now = now or snapshot.as_of or datetime.now(UTC)
        self._customers = {c.customer_id: c for c in snapshot.customers}
        # A customer id that entity resolution folded into another still names that
        # person: a gateway knows the ids of its own system, merged or not.
        self._customer_alias = {m.merged_id: m.kept_id for m in snapshot.merges
                                if m.entity == "customers"}
        self._products = {p.product_id: p for p in snapshot.products}
        self._orders = {o.order_id: o for o in snapshot.orders}
        self._orders_by_customer: dict[str, list[Order]] = defaultdict(list)
        for o in snapshot.orders:
            self._orders_by_customer[o.customer_id].append(o)
        for orders in self._orders_by_customer.values():
            orders.sort(key=lambda o: (o.ordered_at, o.order_id), reverse=True)
        self._items: dict[str, list[OrderItem]] = defaultdict(list)
        for it in snapshot.order_items:
            self._items[it.order_id].append(it)
        self._returns: dict[tuple[str, str], Return] = {
            (r.order_id, r.product_id): r for r in snapshot.returns}
        self._warranties: dict[str, list[Warranty]] = defaultdict(list)
        for w in snapshot.warranties:
            self._warranties[w.customer_id].append(w)
        latest: dict[str, Policy] = {}
        for p in snapshot.policies:
            held = latest.get(p.policy_id)
            if held is None or _version_key(p.version) > _version_key(held.version):
                latest[p.policy_id] = p
        self._policies = list(latest.values())

    # --- entities -----------------------------------------------------------------

    def customer(self, customer_id: str) -> CustomerFacts:
        customer_id = self.canonical_customer(customer_id)
        c = self._customer(customer_id)
        return CustomerFacts(c.customer_id, c.name, c.segment, c.created_at,
                             len(self._orders_by_customer.get(customer_id, [])),
                             len(self.open_refunds(customer_id)))

    def product(self, product_id: str) -> ProductFacts:
        p = self._product(product_id)
        return ProductFacts(p.product_id, p.title, p.brand, p.category, p.price, p.currency,
                            p.in_stock, p.warranty_months, p.replenish_days, p.complements)

    def customer_orders(self, customer_id: str, limit: int = 10) -> list[OrderFacts]:
        """The customer's orders, newest first."""
        customer_id = self.canonical_customer(customer_id)
        self._customer(customer_id)
        orders = self._orders_by_customer.get(customer_id, [])[: max(limit, 0)]
        return [self._order_facts(o) for o in orders]

    def order(self, order_id: str) -> OrderFacts:
        return self._order_facts(self._order(order_id))

    def _order_facts(self, o: Order) -> OrderFacts:
        items = [
            OrderItemFacts(it.product_id, self._title(it.product_id), it.quantity,
                           it.unit_price, (o.order_id, it.product_id) in self._returns)
            for it in self._items.get(o.order_id, [])
        ]
        return OrderFacts(o.order_id, o.status, o.ordered_at, o.shipped_at, o.delivered_at,
                          o.total, o.currency, items)

    # --- returns ------------------------------------------------------------------

    def policy_for(self, product: Product, segment: str = "") -> Policy | None:
        """The most specific return policy for the product's category and the customer's
        segment (None: none applies). A policy that only sets `<segment>_return_window_days`
        (e.g. business terms) applies to that segment alone."""
        category = category_key(product.category)
        best: tuple[tuple[int, bool], Policy] | None = None
        for p in self._policies:
            general = any(k in RETURN_PARAMS for k in p.params)
            if not (general or f"{segment}_return_window_days" in p.params):
                continue
            scope = category_key(p.applies_to) if p.applies_to != "*" else ""
            if scope and not (category == scope or category.startswith(scope + "/")):
                continue
            # Deeper category scope first; at equal depth, terms written for the segment.
            rank = (len(scope.split("/")) if scope else 0,
                    f"{segment}_return_window_days" in p.params)
            if best is None or rank > best[0]:
                best = (rank, p)
        return best[1] if best else None

    def return_eligibility(self, order_id: str, product_id: str,
                           now: datetime | None = None) -> Eligibility:
        now = now or self.now
        order = self._order(order_id)
        product = self._product(product_id)
        if not any(it.product_id == product_id for it in self._items.get(order_id, [])):
            raise NotFound(f"product {short(product_id)} is not part of order {short(order_id)}")
        customer = self._customers.get(order.customer_id)
        policy = self.policy_for(product, customer.segment if customer else "")
        pid, pver = (policy.policy_id, policy.version) if policy else ("", "")

        def answer(eligible: bool, code: str, reason: str, deadline: datetime | None = None,
                   window: int | None = None) -> Eligibility:
            return Eligibility(order_id, product_id, eligible, code, reason, deadline, window,
                               pid, pver)

        if order.status == "cancelled":
            return answer(False, "cancelled", "The order was cancelled; there is nothing to "
                          "return.")
        returned = self._returns.get((order_id, product_id))
        if returned is not None or order.status == "returned":
            when = f" on {returned.returned_at:%Y-%m-%d}" if returned else ""
            return answer(False, "already_returned", f"{product.title} was already returned"
                          f"{when}.")
        if policy is None:
            return answer(False, "no_policy", "No return policy covers this product.")
        if not self._returnable(policy, product):
            return answer(False, "non_returnable", f"{product.title} cannot be returned under "
                          f"'{policy.title}'.")
        if order.delivered_at is None:
            return answer(False, "not_delivered", "The order has not been delivered yet; the "
                          "return window starts at delivery.")
        window = self._window_days(policy, order.customer_id)
        deadline = _end_of_day(order.delivered_at + timedelta(days=window))
        if now <= deadline:
            unopened = (" Opened consumables cannot be returned, so only if unopened."
                        if product.replenish_days > 0
                        and policy.params.get("opened_consumables_returnable") is False else "")
            return answer(True, "eligible", f"Returnable until {deadline:%Y-%m-%d} "
                          f"({window}-day window from delivery).{unopened}", deadline, window)
        return answer(False, "window_expired", f"The {window}-day return window ended on "
                      f"{deadline:%Y-%m-%d}.", deadline, window)

    def _window_days(self, policy: Policy, customer_id: str) -> int:
        segment = self._customers[customer_id].segment if customer_id in self._customers else ""
        value = policy.params.get(f"{segment}_return_window_days",
                                  policy.params.get("return_window_days", 0))
        return int(float(value))

    @staticmethod
    def _returnable(policy: Policy, product: Product) -> bool:
        if policy.params.get("returnable") is False:
            return False
        listed = policy.params.get("non_returnable_categories", "")
        category = category_key(product.category)
        for prefix in str(listed).split(","):
            scope = category_key(prefix.strip())
            if scope and (category == scope or category.startswith(scope + "/")):
                return False
        return True

    # --- warranties and refunds -----------------------------------------------------

    def warranties(self, customer_id: str, now: datetime | None = None) -> list[WarrantyFacts]:
        """The customer's warranties, latest expiry first ([] when they hold none)."""
        customer_id = self.canonical_customer(customer_id)
        now = now or self.now
        self._customer(customer_id)
        out = []
        for w in sorted(self._warranties.get(customer_id, []), key=lambda w: w.expires_at,
                        reverse=True):
            active = w.starts_at <= now <= w.expires_at
            days_left = max(0, (w.expires_at - now).days) if now <= w.expires_at else 0
            out.append(WarrantyFacts(w.warranty_id, w.order_id, w.product_id,
                                     self._title(w.product_id), w.kind, w.starts_at,
                                     w.expires_at, active, days_left, w.claim_status))
        return out

    def open_refunds(self, customer_id: str) -> list[RefundFacts]:
        """Returns whose refund is still requested or approved (not yet paid or rejected)."""
        customer_id = self.canonical_customer(customer_id)
        self._customer(customer_id)
        order_ids = {o.order_id for o in self._orders_by_customer.get(customer_id, [])}
        rows = [r for r in self.snapshot.returns
                if r.order_id in order_ids and r.refund_status in OPEN_REFUND_STATUSES]
        rows.sort(key=lambda r: r.returned_at, reverse=True)
        return [RefundFacts(r.order_id, r.product_id, self._title(r.product_id), r.returned_at,
                            r.reason, r.refund_status, r.refund_amount) for r in rows]

    # --- lookups --------------------------------------------------------------------

    def canonical_customer(self, customer_id: str) -> str:
        """The id the snapshot keeps for this customer (itself unless it was merged)."""
        return self._customer_alias.get(customer_id, customer_id)

    def _customer(self, customer_id: str) -> Customer:
        try:
            return self._customers[customer_id]
        except KeyError:
            raise NotFound(f"unknown customer {short(customer_id)}") from None

    def _product(self, product_id: str) -> Product:
        try:
            return self._products[product_id]
        except KeyError:
            raise NotFound(f"unknown product {short(product_id)}") from None

    def _order(self, order_id: str) -> Order:
        try:
            return self._orders[order_id]
        except KeyError:
            raise NotFound(f"unknown order {short(order_id)}") from None

    def _title(self, product_id: str) -> str:
        p = self._products.get(product_id)
        return p.title if p else product_id
