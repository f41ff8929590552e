"""Retention records: the actions issued to customers (for the frequency cap), and the
open issues in the record store that hold nudges back.

The `retention_issued` table lives in the record store's database and is used on its
database thread (`RecordStore.run_in_db`). One row per distinct nudge (customer, kind,
product, order, due date): issuing the same nudge again does not count twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec

from server.records.sql import Db, insert_ignore
from server.records.store import RecordStore, utcnow
from server.records.types import Handoff, PendingAction

# (customer_id, kind, product_id, order_id, due_at ISO): one distinct nudge.
Key = tuple[str, str, str, str, str]

_INSERT_ISSUED = insert_ignore("retention_issued", (
    "customer_id", "kind", "product_id", "order_id", "due_at", "channel", "as_of", "issued_at"))
OPEN_HANDOFF_STATES = ("pending", "claimed")


@dataclass(frozen=True)
class OpenIssues:
    """Customers with an open issue in the record store (ids), read once per call."""

    complaints: frozenset[str] = frozenset()
    handoffs: frozenset[str] = frozenset()
    approvals: frozenset[str] = frozenset()


def _iso(ts: datetime) -> str:
    return ts.isoformat()


class RetentionLog:
    def __init__(self, store: RecordStore) -> None:
        self._store = store

    async def open_issues(self, complaint_intents: Sequence[str], complaints_since: str,
                          customer_id: str = "") -> OpenIssues:
        """Customers with an unresolved handoff, a pending approval or a recent complaint
        (all customers, or just `customer_id`)."""
        intents = set(complaint_intents)

        def select(c: Db) -> OpenIssues:
            marks = ",".join("?" * len(OPEN_HANDOFF_STATES))
            complaints: set[str] = set()
            handoffs: set[str] = set()
            for (raw,) in c.execute(f"SELECT record FROM handoffs WHERE state IN ({marks})",
                                    OPEN_HANDOFF_STATES):
                h = msgspec.json.decode(bytes(raw), type=Handoff)
                if h.customer_id and (not customer_id or h.customer_id == customer_id):
                    (complaints if h.intent in intents else handoffs).add(h.customer_id)
            approvals = set()
            for (raw,) in c.execute("SELECT record FROM actions WHERE state = 'pending'"):
                a = msgspec.json.decode(bytes(raw), type=PendingAction)
                if a.customer_id and (not customer_id or a.customer_id == customer_id):
                    approvals.add(a.customer_id)
            if intents:
                imarks = ",".join("?" * len(intents))
                where = " AND customer_id = ?" if customer_id else ""
                args = (*sorted(intents), complaints_since,
                        *((customer_id,) if customer_id else ()))
                for (cid,) in c.execute(
                        f"SELECT DISTINCT customer_id FROM decisions WHERE intent IN ({imarks}) "
                        f"AND started_at >= ?{where}", args):
                    if cid:
                        complaints.add(cid)
            return OpenIssues(frozenset(complaints), frozenset(handoffs), frozenset(approvals))

        return await self._store.run_in_db(select)

    async def issued(self, customer_ids: Sequence[str], since: datetime, until: datetime
                     ) -> dict[str, dict[str, set[Key]]]:
        """customer -> channel -> keys of the actions issued with as_of in (since, until]."""

        def select(c: Db) -> dict[str, dict[str, set[Key]]]:
            out: dict[str, dict[str, set[Key]]] = defaultdict(dict)
            ids = list(customer_ids)
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                marks = ",".join("?" * len(part))
                for cid, kind, pid, oid, due, channel in c.execute(
                        "SELECT customer_id, kind, product_id, order_id, due_at, channel "
                        f"FROM retention_issued WHERE customer_id IN ({marks}) "
                        "AND as_of > ? AND as_of <= ?", (*part, _iso(since), _iso(until))):
                    out[cid].setdefault(channel, set()).add((cid, kind, pid, oid, due))
            return dict(out)

        return await self._store.run_in_db(select)

    async def record(self, issued: Sequence[tuple[Key, str]], as_of: datetime) -> int:
        """Remember issued actions, (key, channel) each; returns how many were new."""
        rows = [(*key, channel, _iso(as_of), utcnow()) for key, channel in issued]
        if not rows:
            return 0

        def insert(c: Db) -> int:
            with c.transaction():
                return c.executemany(_INSERT_ISSUED, rows)

        return await self._store.run_in_db(insert)
