"""KPI and drift reports, for Admin.GetKpis/GetDrift and the dashboard's JSON."""

from __future__ import annotations

from datetime import UTC

from server.knowledge.service import KnowledgeService
from server.observability.drift import DriftMonitor, ModelDrift
from server.records.kpis import (
    KpiQuery,
    Kpis,
    OrderBook,
    ShopOrder,
    compute,
    load_rows,
    parse_time,
)
from server.records.store import RecordStore


class Reports:
    def __init__(self, records: RecordStore, knowledge: KnowledgeService,
                 drift: DriftMonitor | None, attribution_days: float = 7.0) -> None:
        self._records = records
        self._knowledge = knowledge
        self._drift = drift
        self._days = attribution_days
        self._book: tuple[str, OrderBook] | None = None

    def _orders(self) -> OrderBook:
        shop = self._knowledge.current
        if self._book is None or self._book[0] != shop.snapshot_id:
            self._book = (shop.snapshot_id, OrderBook(
                ShopOrder(o.order_id, o.customer_id,
                          o.ordered_at if o.ordered_at.tzinfo else o.ordered_at.replace(
                              tzinfo=UTC), o.total)
                for o in shop.snapshot.orders))
        return self._book[1]

    async def kpis(self, q: KpiQuery) -> Kpis:
        q = KpiQuery(parse_time(q.since, "since"), parse_time(q.until, "until"),
                     q.channel, q.intent)
        book, days = self._orders(), self._days
        # Rows and arithmetic both on the database thread: the loop only awaits.
        return await self._records.run_in_db(lambda conn: compute(load_rows(conn, q), book, days))

    def drift(self, model: str = "") -> list[ModelDrift]:
        return self._drift.report(model) if self._drift is not None else []
