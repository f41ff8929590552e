"""protobuf <-> record conversions for the Agent and Admin services."""

from __future__ import annotations

import json

from aftercare.v1 import admin_pb2, agent_pb2
from server.records.types import DecisionRecord, Handoff, PendingAction


def handoff_pb(h: Handoff) -> agent_pb2.Handoff:
    return agent_pb2.Handoff(
        handoff_id=h.handoff_id, decision_id=h.decision_id, conversation_id=h.conversation_id,
        customer_id=h.customer_id, state=h.state, reason=h.reason, rules_fired=h.rules_fired,
        redacted_text=h.redacted_text, intent=h.intent, agent_id=h.agent_id, reply=h.reply,
        created_at=h.created_at, updated_at=h.updated_at,
    )


def action_pb(a: PendingAction) -> agent_pb2.PendingAction:
    return agent_pb2.PendingAction(
        action_id=a.action_id, decision_id=a.decision_id, kind=a.kind, state=a.state,
        customer_id=a.customer_id, order_id=a.order_id, amount=a.amount, currency=a.currency,
        detail=a.detail,
        agent_id=a.agent_id, note=a.note, created_at=a.created_at, updated_at=a.updated_at,
    )


def decision_pb(d: DecisionRecord) -> admin_pb2.DecisionRecord:
    return admin_pb2.DecisionRecord(
        decision_id=d.decision_id, conversation_id=d.conversation_id, customer_id=d.customer_id,
        channel=d.channel, started_at=d.started_at, finished_at=d.finished_at,
        latencies=[admin_pb2.StageLatency(stage=k, ms=v) for k, v in d.latencies_ms.items()],
        redacted_input=d.redacted_input, intent=d.intent, confidence=d.confidence,
        out_of_scope=d.out_of_scope, route=d.route, rules_fired=d.rules_fired,
        sentiment=d.sentiment, model_versions=d.model_versions,
        policy_version=d.policy_version, index_version=d.index_version,
        snapshot_id=d.snapshot_id,
        passages=[admin_pb2.RetrievedPassage(id=p.id, source_id=p.source_id, score=p.score)
                  for p in d.passages],
        facts=[json.dumps(f, sort_keys=True, default=str) for f in d.facts],
        violations=[admin_pb2.Violation(rule=v.rule, action=v.action, detail=v.detail)
                    for v in d.violations],
        actions=[json.dumps(a, sort_keys=True, default=str) for a in d.actions],
        final_text=d.final_text, outcome=d.outcome, pii_kinds=",".join(d.pii_kinds),
        fallbacks=d.fallbacks,
        trace_id=d.trace_id,
        link=json.dumps(d.link, sort_keys=True) if d.link else "",
        flow=json.dumps(d.flow, sort_keys=True) if d.flow else "",
    )
