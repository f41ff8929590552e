"""aftercare.v1.Admin servicer: lineage lookup, policy reload, model lifecycle, corrections."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from grpc import aio

from aftercare.v1 import admin_pb2, admin_pb2_grpc, types_pb2
from server.api.audit import actor_of
from server.api.lifecycle_pb import model_info_pb, policy_from_pb, policy_pb, report_pb
from server.api.observe_pb import drift_pb, kpis_pb
from server.api.records_pb import decision_pb
from server.api.retention_pb import retention_action_pb, scan_trailers
from server.errors import Unavailable
from server.inference.lifecycle import ModelLifecycle
from server.inference.registry import ModelEntry, ModelRegistry
from server.inference.traffic import TrafficRouter
from server.knowledge.service import KnowledgeService
from server.observability.reports import Reports
from server.pipeline.policies import PolicyState
from server.records.audit import AuditLog
from server.records.kpis import KpiQuery
from server.records.store import RecordStore, utcnow
from server.retention.service import RetentionService, ScanReport


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, records: RecordStore, policies: PolicyState, registry: ModelRegistry,
                 knowledge: KnowledgeService, executor: Executor,
                 retention: RetentionService | None = None,
                 reports: Reports | None = None,
                 lifecycle: ModelLifecycle | None = None, traffic: TrafficRouter | None = None,
                 audit: AuditLog | None = None) -> None:
        self._records = records
        self._retention = retention
        self._lifecycle = lifecycle
        self._traffic = traffic
        self._audit = audit
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
        return admin_pb2.ListModelsResponse(
            models=[self._info(e) for e in self._registry.entries()])

    def _info(self, entry: ModelEntry) -> admin_pb2.ModelInfo:
        traffic = ""
        if self._traffic is not None:
            active = self._registry.active().get(entry.role)
            active_version = active.version if active and active.name == entry.name else 0
            traffic = self._traffic.traffic_of(entry.name, entry.version, active_version)
        elif entry.state == "ACTIVE":
            traffic = "active"
        return model_info_pb(entry, traffic)

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

    # -- model lifecycle -------------------------------------------------------------------
    def _life(self) -> tuple[ModelLifecycle, TrafficRouter, AuditLog]:
        assert self._lifecycle is not None and self._traffic is not None
        assert self._audit is not None
        return self._lifecycle, self._traffic, self._audit

    async def LoadModel(
        self, request: admin_pb2.LoadModelRequest, context: aio.ServicerContext
    ) -> admin_pb2.ModelInfo:
        lifecycle, _, _ = self._life()
        entry = await lifecycle.load(request.name, request.version, actor_of(context))
        return self._info(entry)

    async def ActivateModel(
        self, request: admin_pb2.ActivateModelRequest, context: aio.ServicerContext
    ) -> admin_pb2.ActivateModelResponse:
        lifecycle, _, _ = self._life()
        swap = await lifecycle.activate(request.name, request.version, actor_of(context))
        return admin_pb2.ActivateModelResponse(previous=swap.previous, active=swap.active)

    async def Rollback(
        self, request: admin_pb2.RollbackRequest, context: aio.ServicerContext
    ) -> admin_pb2.ActivateModelResponse:
        lifecycle, _, _ = self._life()
        swap = await lifecycle.rollback(request.name, actor_of(context))
        return admin_pb2.ActivateModelResponse(previous=swap.previous, active=swap.active)

    async def UnloadModel(
        self, request: admin_pb2.UnloadModelRequest, context: aio.ServicerContext
    ) -> admin_pb2.ModelInfo:
        lifecycle, _, _ = self._life()
        entry = await lifecycle.unload(request.name, request.version, actor_of(context))
        return self._info(entry)

    async def SetTrafficPolicy(
        self, request: admin_pb2.TrafficPolicy, context: aio.ServicerContext
    ) -> admin_pb2.TrafficPolicy:
        _, traffic, _ = self._life()
        policy = await traffic.set_policy(policy_from_pb(request), actor_of(context))
        return policy_pb(policy)

    async def GetTrafficReport(
        self, request: admin_pb2.GetTrafficReportRequest, context: aio.ServicerContext
    ) -> admin_pb2.TrafficReport:
        _, traffic, audit = self._life()
        events = await audit.lifecycle_events(request.name)
        return report_pb(traffic.report(request.name), events, traffic.policy(request.name))

    async def AddCorrection(
        self, request: admin_pb2.CorrectionRequest, context: aio.ServicerContext
    ) -> admin_pb2.CorrectionResponse:
        _, _, audit = self._life()
        correction_id, duplicate = await audit.add_correction(
            request.decision_id, request.true_intent, request.note, actor_of(context))
        return admin_pb2.CorrectionResponse(correction_id=correction_id, duplicate=duplicate)
