"""KPI and drift reports <-> protobuf."""

from __future__ import annotations

from aftercare.v1 import admin_pb2
from server.observability.drift import ModelDrift
from server.records.kpis import Kpis


def kpis_pb(k: Kpis) -> admin_pb2.Kpis:
    return admin_pb2.Kpis(
        conversations=k.conversations, responses=k.responses,
        containment_rate=k.containment_rate, escalation_rate=k.escalation_rate,
        escalations_by_reason=k.escalations_by_reason, csat_avg=k.csat_avg,
        csat_count=k.csat_count, nps=k.nps, nps_count=k.nps_count, fcr_rate=k.fcr_rate,
        resolution_time_p50_s=k.resolution_time_p50_s,
        resolution_time_p90_s=k.resolution_time_p90_s, conversion_rate=k.conversion_rate,
        post_interaction_revenue=k.post_interaction_revenue, reopen_rate=k.reopen_rate,
        draft_acceptance_rate=k.draft_acceptance_rate,
        by_intent_containment=k.by_intent_containment,
    )


def drift_pb(models: list[ModelDrift], generated_at: str) -> admin_pb2.DriftReport:
    return admin_pb2.DriftReport(generated_at=generated_at, models=[
        admin_pb2.ModelDrift(
            model=m.model, version=m.version, samples=m.samples, window=m.window,
            figures=[admin_pb2.DriftFigure(name=f.name, live=f.live, reference=f.reference,
                                           threshold=f.threshold, alert=f.alert,
                                           available=f.available, rule=f.rule)
                     for f in m.figures],
            live_intent_mix=m.live_intent_mix, reference_intent_mix=m.reference_intent_mix,
            alert=m.alert)
        for m in models])
