"""Retention calls the API makes: next best actions for one customer, and a scan of
every customer for a CRM, streamed in chunks.

Per call: the shop in force and its `RetentionIndex` (built once per snapshot, off the
loop), the retention policy in force, and the open issues from the record store are
taken once at the start. CPU work (histories, kinds, the recommender for cross-sells,
suppression) runs in the executor, one chunk of customers at a time, so a scan holds
one chunk in memory and stops at the next chunk boundary when the caller cancels.
Actions that go out are remembered (`RetentionLog`) for the frequency cap.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from server.errors import InvalidInput, NotFound, short
from server.governance.policy import RETENTION_KINDS, RetentionPolicy
from server.knowledge.service import KnowledgeService, ShopKnowledge
from server.pipeline.policies import PolicyState
from server.records.retention import Key, OpenIssues, RetentionLog
from server.retention.history import RetentionIndex
from server.retention.kinds import ActionFactory, CrossSellFn, Window, actions_for
from server.retention.suppression import SuppressionCounts, apply
from server.retention.types import RetentionAction

log = logging.getLogger(__name__)
T = TypeVar("T")
DEFAULT_LIMIT = 5
MAX_LIMIT = 50
CROSS_SELL_CANDIDATES = 5


def parse_time(value: str, field_name: str) -> datetime | None:
    """ISO 8601 date or datetime ('' = None); naive times are UTC."""
    if not value.strip():
        return None
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field_name} is not an ISO 8601 date or time: {value!r}") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def parse_kinds(kinds: Sequence[str]) -> frozenset[str]:
    unknown = sorted(set(kinds) - set(RETENTION_KINDS))
    if unknown:
        raise InvalidInput(f"unknown action kinds {unknown}; known: {', '.join(RETENTION_KINDS)}")
    return frozenset(kinds or RETENTION_KINDS)


@dataclass
class NextBestActions:
    actions: list[RetentionAction]
    snapshot_id: str


@dataclass
class ScanReport:
    """What one scan did; filled while it runs (counts of suppressions included)."""

    customers_total: int = 0
    customers_scanned: int = 0
    sent: int = 0
    cancelled: bool = False
    finished: bool = False
    counts: SuppressionCounts = field(default_factory=SuppressionCounts)


class RetentionService:
    def __init__(self, knowledge: KnowledgeService, records: RetentionLog,
                 policies: PolicyState, executor: Executor, chunk_size: int = 200) -> None:
        self._knowledge = knowledge
        self._records = records
        self._policies = policies
        self._executor = executor
        self._chunk = max(1, chunk_size)
        self._index: RetentionIndex | None = None
        self._building = asyncio.Lock()
        self.scans: list[ScanReport] = []  # finished scans, latest last (for operators/tests)
        self._scan_done = asyncio.Condition()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def shop(self) -> tuple[ShopKnowledge, RetentionIndex]:
        """The shop in force and its retention index (built once per snapshot and policy
        shrink weight)."""
        shop = self._knowledge.current
        policy = self._policies.current.policy.retention

        def stale(index: RetentionIndex | None) -> bool:
            return (index is None or index.snapshot_id != shop.snapshot_id
                    or index.shrink != policy.replenish_shrink)

        if stale(self._index):
            async with self._building:
                if stale(self._index):
                    self._index = await self._run(RetentionIndex, shop.snapshot,
                                                  policy.replenish_shrink)
        assert self._index is not None
        return shop, self._index

    async def _issues(self, policy: RetentionPolicy, customer_id: str = "") -> OpenIssues:
        since = datetime.now(UTC) - timedelta(days=policy.complaint_days)
        return await self._records.open_issues(
            policy.complaint_intents, since.isoformat(timespec="milliseconds"), customer_id)

    async def next_best_actions(self, customer_id: str, limit: int = 0,
                                as_of: str = "") -> NextBestActions:
        if not customer_id:
            raise InvalidInput("customer_id is empty")
        if not 0 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 0 and {MAX_LIMIT}")
        when = parse_time(as_of, "as_of")
        shop, index = await self.shop()
        customer_id = shop.facts.canonical_customer(customer_id)  # merged ids too
        if not index.has_customer(customer_id):
            raise NotFound(f"unknown customer {short(customer_id)}")
        policy = self._policies.current.policy.retention
        now = when or index.as_of
        window = Window(now, now - timedelta(days=3650),
                        now + timedelta(days=policy.lookahead_days))
        issues = await self._issues(policy, customer_id)
        issued = await self._records.issued(
            [customer_id], now - timedelta(days=policy.frequency_cap_days), now)
        counts = SuppressionCounts()
        actions = await self._run(_compute, shop, index, [customer_id], window,
                                  frozenset(RETENTION_KINDS), issues, issued, policy, counts)
        actions = actions[: limit or DEFAULT_LIMIT]
        await self._records.record([(a.key, a.channel) for a in actions if a.channel], now)
        return NextBestActions(actions, shop.snapshot_id)

    async def scan(self, due_before: str = "", kinds: Sequence[str] = (), limit: int = 0,
                   report: ScanReport | None = None) -> AsyncGenerator[RetentionAction, None]:
        """Every sendable action due before `due_before` (default: the shop's now), for
        all customers, in customer order; `limit` 0 = no limit."""
        wanted = parse_kinds(kinds)
        if limit < 0:
            raise InvalidInput("limit must be >= 0 (0 = no limit)")
        before = parse_time(due_before, "due_before")
        report = report if report is not None else ScanReport()
        try:
            shop, index = await self.shop()
            policy = self._policies.current.policy.retention
            now = index.as_of
            window = Window(now, now - timedelta(days=3650), before or now)
            issues = await self._issues(policy)
            ids = index.customer_ids
            report.customers_total = len(ids)
            since = now - timedelta(days=policy.frequency_cap_days)
            for start in range(0, len(ids), self._chunk):
                part = ids[start:start + self._chunk]
                issued = await self._records.issued(part, since, now)
                actions = await self._run(_compute, shop, index, part, window, wanted, issues,
                                          issued, policy, report.counts)
                sendable = [a for a in actions if a.channel]
                if limit:
                    sendable = sendable[: limit - report.sent]
                await self._records.record([(a.key, a.channel) for a in sendable], now)
                report.customers_scanned += len(part)
                for a in sendable:
                    report.sent += 1
                    yield a
                if limit and report.sent >= limit:
                    break
            report.finished = True
        except (asyncio.CancelledError, GeneratorExit):
            report.cancelled = True
            raise
        finally:
            log.info("retention scan: %d actions to %d of %d customers%s; suppressed %s",
                     report.sent, report.customers_scanned, report.customers_total,
                     " (cancelled)" if report.cancelled else "", report.counts.as_dict())
            await self._finished(report)

    async def _finished(self, report: ScanReport) -> None:
        async with self._scan_done:
            self.scans.append(report)
            del self.scans[:-20]
            self._scan_done.notify_all()

    async def wait_for_scan(self, predicate: Callable[[ScanReport], bool]) -> ScanReport:
        """The latest finished scan that matches (waits for one to finish)."""
        async with self._scan_done:
            await self._scan_done.wait_for(lambda: any(predicate(s) for s in self.scans))
            return [s for s in self.scans if predicate(s)][-1]


def _cross_sell(shop: ShopKnowledge) -> CrossSellFn:
    def recommend(customer_id: str, now: datetime) -> list[tuple[str, str, float, str]]:
        recs = shop.recommender.recommend(customer_id, (), CROSS_SELL_CANDIDATES, now=now)
        return [(r.product_id, r.title, r.score, r.reason) for r in recs]

    return recommend


def _compute(shop: ShopKnowledge, index: RetentionIndex, customer_ids: Sequence[str],
             window: Window, kinds: frozenset[str], issues: OpenIssues,
             issued: dict[str, dict[str, set[Key]]], policy: RetentionPolicy,
             counts: SuppressionCounts) -> list[RetentionAction]:
    """The actions of a chunk of customers, suppression applied (runs in the executor)."""
    factory = ActionFactory(policy, lambda pid: index.products[pid].title
                            if pid in index.products else pid)
    recommend = _cross_sell(shop)
    out: list[RetentionAction] = []
    for cid in customer_ids:
        h = index.customer(cid)
        out += apply(actions_for(h, window, factory, kinds, recommend), h, issues, policy,
                     issued.get(cid, {}), counts)
    return out
