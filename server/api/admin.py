"""aftercare.v1.Admin servicer: lineage lookup, policy reload, model listing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from grpc import aio

from aftercare.v1 import admin_pb2, admin_pb2_grpc, types_pb2
from server.api.observe_pb import drift_pb, kpis_pb
from server.api.records_pb import decision_pb
from server.api.retention_pb import retention_action_pb, scan_trailers
from server.errors import Unavailable
from server.inference.registry import ModelRegistry
from server.knowledge.service import KnowledgeService
from server.observability.reports import Reports
from server.pipeline.policies import PolicyState
from server.records.kpis import KpiQuery
from server.records.store import RecordStore, utcnow
from server.retention.service import RetentionService, ScanReport


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, records: RecordStore, policies: PolicyState, registry: ModelRegistry,
                 knowledge: KnowledgeService, executor: Executor,
                 retention: RetentionService | None = None,
                 reports: Reports | None = None) -> None:
        self._records = records
        self._retention = retention
        self._knowledge = knowledge
        self._policies = policies
        self._registry = registry
        self._executor = executor
        self._reports = reports

    async def GetDecision(
        self, request: admin_pb2.GetDecisionRequest, context: aio.ServicerContext
    ) -> admin_pb2.DecisionRecord:
        return decision_pb(await self._records.get_decision(request.decision_id))

    async def ReloadPolicies(
        self, request: admin_pb2.ReloadPoliciesRequest, context: aio.ServicerContext
    ) -> admin_pb2.ReloadPoliciesResponse:
        new, old = await self._policies.reload(request.path, self._executor)
        return admin_pb2.ReloadPoliciesResponse(
            version=new, previous_version=old,
            content_hash=self._policies.current.policy.content_hash,
        )

    async def ListModels(
        self, request: admin_pb2.ListModelsRequest, context: aio.ServicerContext
    ) -> admin_pb2.ListModelsResponse:
        return admin_pb2.ListModelsResponse(models=[
            admin_pb2.ModelInfo(name=m.name, version=m.version, providers=m.providers,
                                active=True)
            for m in self._registry.active().values()
        ])

    async def ReloadData(
        self, request: admin_pb2.ReloadDataRequest, context: aio.ServicerContext
    ) -> admin_pb2.ReloadDataResponse:
        started = time.perf_counter()
        shop, previous = await self._knowledge.reload(request.data_dir)
        return admin_pb2.ReloadDataResponse(
            snapshot_id=shop.snapshot_id,
            previous_snapshot_id=previous.snapshot_id if previous else "",
            counts={
                name: admin_pb2.EntityCounts(read=c.read, accepted=c.accepted,
                                             quarantined=c.quarantined, merged=c.merged)
                for name, c in shop.snapshot.counts.items()
            },
            index_version=shop.retriever.version,
            index_action=shop.index_action,
            seconds=time.perf_counter() - started,
        )

    async def ScanActions(
        self, request: admin_pb2.ScanActionsRequest, context: aio.ServicerContext
    ) -> AsyncIterator[types_pb2.RetentionAction]:
        if self._retention is None:
            raise Unavailable("retention is not configured on this server")
        report = ScanReport()
        actions = self._retention.scan(request.due_before, list(request.kinds), request.limit,
                                       report)
        try:
            async for action in actions:
                yield retention_action_pb(action)
            context.set_trailing_metadata(scan_trailers(report))
        finally:
            await actions.aclose()  # a cancelled call stops the scan at its next chunk

    def _reports_or_fail(self) -> Reports:
        if self._reports is None:
            from server.errors import Unavailable

            raise Unavailable("reports are not configured on this server")
        return self._reports

    async def GetKpis(
        self, request: admin_pb2.GetKpisRequest, context: aio.ServicerContext
    ) -> admin_pb2.Kpis:
        return kpis_pb(await self._reports_or_fail().kpis(KpiQuery(
            since=request.since, until=request.until, channel=request.channel,
            intent=request.intent)))

    async def GetDrift(
        self, request: admin_pb2.GetDriftRequest, context: aio.ServicerContext
    ) -> admin_pb2.DriftReport:
        return drift_pb(self._reports_or_fail().drift(request.model), utcnow())
