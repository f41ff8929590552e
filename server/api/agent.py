"""aftercare.v1.Agent servicer: the human side of handoffs, approvals and drafts."""

from __future__ import annotations

from grpc import aio

from aftercare.v1 import agent_pb2, agent_pb2_grpc
from server.api.drafts_pb import draft_pb, rates_pb
from server.api.records_pb import action_pb, handoff_pb
from server.records.audit import AuditLog, check_label
from server.records.base import Records
from server.records.drafts import DraftStore


class AgentServicer(agent_pb2_grpc.AgentServicer):
    def __init__(self, records: Records, drafts: DraftStore,
                 audit: AuditLog | None = None) -> None:
        self._records = records
        self._drafts = drafts
        self._audit = audit

    async def ListHandoffs(
        self, request: agent_pb2.ListHandoffsRequest, context: aio.ServicerContext
    ) -> agent_pb2.ListHandoffsResponse:
        items = await self._records.list_handoffs(request.state, request.limit)
        return agent_pb2.ListHandoffsResponse(handoffs=[handoff_pb(h) for h in items])

    async def ClaimHandoff(
        self, request: agent_pb2.ClaimHandoffRequest, context: aio.ServicerContext
    ) -> agent_pb2.Handoff:
        h = await self._records.transition_handoff(
            request.handoff_id, request.agent_id, "claimed"
        )
        return handoff_pb(h)

    async def ResolveHandoff(
        self, request: agent_pb2.ResolveHandoffRequest, context: aio.ServicerContext
    ) -> agent_pb2.Handoff:
        if request.true_intent and self._audit is not None:
            check_label(request.true_intent)  # before resolving: a bad label changes nothing
        h = await self._records.transition_handoff(
            request.handoff_id, request.agent_id, "resolved", request.reply
        )
        if request.true_intent and self._audit is not None:
            # The agent's label for the message: a training example for `models retrain`.
            await self._audit.add_correction(h.decision_id, request.true_intent,
                                             f"handoff {h.handoff_id}", request.agent_id)
        return handoff_pb(h)

    async def ListPendingActions(
        self, request: agent_pb2.ListPendingActionsRequest, context: aio.ServicerContext
    ) -> agent_pb2.ListPendingActionsResponse:
        items = await self._records.list_actions(request.state, request.limit)
        return agent_pb2.ListPendingActionsResponse(actions=[action_pb(a) for a in items])

    async def ApproveAction(
        self, request: agent_pb2.ActionDecisionRequest, context: aio.ServicerContext
    ) -> agent_pb2.PendingAction:
        a = await self._records.decide_action(
            request.action_id, request.agent_id, approve=True, note=request.note
        )
        return action_pb(a)

    async def RejectAction(
        self, request: agent_pb2.ActionDecisionRequest, context: aio.ServicerContext
    ) -> agent_pb2.PendingAction:
        a = await self._records.decide_action(
            request.action_id, request.agent_id, approve=False, note=request.note
        )
        return action_pb(a)

    async def ListDrafts(
        self, request: agent_pb2.ListDraftsRequest, context: aio.ServicerContext
    ) -> agent_pb2.ListDraftsResponse:
        items = await self._drafts.list_drafts(request.state, request.limit, request.intent,
                                        request.channel)
        rates = await self._drafts.rates()
        return agent_pb2.ListDraftsResponse(drafts=[draft_pb(d) for d in items],
                                            rates=[rates_pb(r) for r in rates])

    async def ReviewDraft(
        self, request: agent_pb2.ReviewDraftRequest, context: aio.ServicerContext
    ) -> agent_pb2.Draft:
        d = await self._drafts.review(request.decision_id, request.agent_id, request.verdict,
                                      request.edited_text)
        return draft_pb(d)
