"""pb <-> domain for the model lifecycle: ModelInfo, TrafficPolicy, TrafficReport."""

from __future__ import annotations

from collections.abc import Sequence

from aftercare.v1 import admin_pb2
from server.inference.registry import ModelEntry
from server.inference.traffic import RollbackRule, TrafficPolicy, VersionReport
from server.records.audit import LifecycleEvent


def model_info_pb(entry: ModelEntry, traffic: str) -> admin_pb2.ModelInfo:
    return admin_pb2.ModelInfo(
        name=entry.name, version=entry.version, providers=entry.providers,
        active=entry.state == "ACTIVE", state=entry.state, role=entry.role, traffic=traffic,
        error=entry.error, metrics=entry.metrics,
    )


def policy_from_pb(pb: admin_pb2.TrafficPolicy) -> TrafficPolicy:
    r = pb.rollback
    return TrafficPolicy(
        name=pb.name, canary_version=pb.canary_version, canary_percent=pb.canary_percent,
        shadow_version=pb.shadow_version, shadow_percent=pb.shadow_percent,
        rollback=RollbackRule(max_error_rate=r.max_error_rate, max_p99_ratio=r.max_p99_ratio,
                              min_agreement=r.min_agreement, min_requests=r.min_requests),
    )


def policy_pb(policy: TrafficPolicy) -> admin_pb2.TrafficPolicy:
    r = policy.rollback
    return admin_pb2.TrafficPolicy(
        name=policy.name, canary_version=policy.canary_version,
        canary_percent=policy.canary_percent, shadow_version=policy.shadow_version,
        shadow_percent=policy.shadow_percent,
        rollback=admin_pb2.RollbackRule(
            max_error_rate=r.max_error_rate, max_p99_ratio=r.max_p99_ratio,
            min_agreement=r.min_agreement, min_requests=r.min_requests),
    )


def report_pb(versions: Sequence[VersionReport], events: Sequence[LifecycleEvent],
              policy: TrafficPolicy) -> admin_pb2.TrafficReport:
    return admin_pb2.TrafficReport(
        versions=[admin_pb2.VersionStats(
            version=v.version, traffic=v.traffic, requests=v.requests, errors=v.errors,
            p50_ms=v.p50_ms, p99_ms=v.p99_ms, compared=v.compared, agreement=v.agreement,
            shadow_dropped=v.shadow_dropped) for v in versions],
        events=[admin_pb2.LifecycleEvent(at=e.at, kind=e.kind, detail=e.detail, actor=e.actor)
                for e in events],
        policy=policy_pb(policy),
    )
