"""protobuf conversions for Search, Recommend and GetCustomerContext answers."""

from __future__ import annotations

from datetime import datetime

from aftercare.v1 import support_pb2, types_pb2
from server.knowledge.recommend.recommender import Recommendation
from server.knowledge.retrieval.retriever import Passage
from server.knowledge.service import CustomerContext


def _iso(dt: datetime | None) -> str:
    return "" if dt is None else dt.isoformat().replace("+00:00", "Z")


def passage_pb(p: Passage) -> types_pb2.Passage:
    return types_pb2.Passage(id=p.id, source_id=p.source_id, title=p.title, text=p.text,
                             score=p.score, kind=p.kind)


def recommendation_pb(r: Recommendation) -> types_pb2.Recommendation:
    return types_pb2.Recommendation(product_id=r.product_id, title=r.title, score=r.score,
                                    reason=r.reason)


def customer_context_pb(ctx: CustomerContext) -> support_pb2.CustomerContext:
    orders = []
    for oc in ctx.orders:
        o = oc.order
        lines = [
            support_pb2.OrderLine(
                product_id=item.product_id, title=item.title, quantity=item.quantity,
                unit_price=item.unit_price, return_eligible=el.eligible,
                return_reason=el.reason, return_deadline=_iso(el.deadline),
                return_policy_id=el.policy_id,
            )
            for item, el in zip(o.items, oc.eligibility, strict=True)
        ]
        orders.append(support_pb2.OrderSummary(
            order_id=o.order_id, status=o.status, ordered_at=_iso(o.ordered_at),
            shipped_at=_iso(o.shipped_at), delivered_at=_iso(o.delivered_at), total=o.total,
            currency=o.currency, items=lines,
        ))
    return support_pb2.CustomerContext(
        customer_id=ctx.customer.customer_id, name=ctx.customer.name,
        segment=ctx.customer.segment, orders=orders,
        warranties=[
            support_pb2.WarrantyInfo(
                warranty_id=w.warranty_id, product_id=w.product_id, title=w.product_title,
                order_id=w.order_id, expires_at=_iso(w.expires_at), active=w.active,
                days_left=w.days_left, kind=w.kind, claim_status=w.claim_status,
            )
            for w in ctx.warranties
        ],
        open_refunds=[
            support_pb2.RefundInfo(
                order_id=r.order_id, product_id=r.product_id, refund_status=r.refund_status,
                amount=r.refund_amount, returned_at=_iso(r.returned_at),
            )
            for r in ctx.open_refunds
        ],
        snapshot_id=ctx.snapshot_id,
    )
