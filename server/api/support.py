"""aftercare.v1.Support servicer: decode the request, call the core, encode the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from grpc import aio

from aftercare.v1 import support_pb2, support_pb2_grpc, types_pb2
from server.api.knowledge_pb import customer_context_pb, passage_pb, recommendation_pb
from server.api.retention_pb import next_best_actions_pb
from server.errors import Unavailable
from server.inference.service import InferenceService, deadline_from_timeout
from server.knowledge.service import KnowledgeService
from server.pipeline.actions import new_id
from server.pipeline.feedback import FeedbackInput, FeedbackService
from server.pipeline.respond import Delta, RespondInput, RespondPipeline
from server.retention.service import RetentionService


class SupportServicer(support_pb2_grpc.SupportServicer):
    def __init__(self, inference: InferenceService, knowledge: KnowledgeService,
                 respond: RespondPipeline, feedback: FeedbackService,
                 retention: RetentionService | None = None) -> None:
        self._inference = inference
        self._retention = retention
        self._knowledge = knowledge
        self._respond = respond
        self._feedback = feedback

    async def Classify(
        self, request: support_pb2.ClassifyRequest, context: aio.ServicerContext
    ) -> support_pb2.ClassifyResponse:
        result = await self._inference.classify(
            request.text,
            top_k=request.top_k,
            model=request.model,
            deadline=deadline_from_timeout(context.time_remaining()),
            routing_key=request.routing_key,
        )
        return support_pb2.ClassifyResponse(
            intents=[types_pb2.IntentScore(name=s.name, probability=s.probability)
                     for s in result.intents],
            out_of_scope=result.out_of_scope,
            model_version=result.model_version,
        )

    async def Embed(
        self, request: support_pb2.EmbedRequest, context: aio.ServicerContext
    ) -> support_pb2.EmbedResponse:
        result = await self._inference.embed(
            list(request.texts),
            model=request.model,
            deadline=deadline_from_timeout(context.time_remaining()),
        )
        return support_pb2.EmbedResponse(
            embeddings=[types_pb2.Vector(values=row) for row in result.vectors.tolist()],
            model_version=result.model_version,
        )

    async def Search(
        self, request: support_pb2.SearchRequest, context: aio.ServicerContext
    ) -> support_pb2.SearchResponse:
        passages = await self._knowledge.search(request.query, request.top_k, request.filters)
        return support_pb2.SearchResponse(
            passages=[passage_pb(p) for p in passages],
            index_version=self._knowledge.current.retriever.version,
        )

    async def Recommend(
        self, request: support_pb2.RecommendRequest, context: aio.ServicerContext
    ) -> support_pb2.RecommendResponse:
        items = await self._knowledge.recommend(
            request.customer_id, list(request.product_ids), request.top_k
        )
        return support_pb2.RecommendResponse(
            items=[recommendation_pb(r) for r in items],
            snapshot_id=self._knowledge.current.snapshot_id,
        )

    async def GetCustomerContext(
        self, request: support_pb2.CustomerContextRequest, context: aio.ServicerContext
    ) -> support_pb2.CustomerContext:
        ctx = await self._knowledge.customer_context(request.customer_id, request.max_orders)
        return customer_context_pb(ctx)

    async def Respond(
        self, request: support_pb2.RespondRequest, context: aio.ServicerContext
    ) -> AsyncIterator[support_pb2.RespondEvent]:
        decision_id = new_id("dec")
        # Sent before any chunk, so a client that cancels early can still look it up.
        await context.send_initial_metadata((("decision-id", decision_id),))
        events = self._respond.run(
            RespondInput(request.text, request.customer_id, request.conversation_id,
                         request.channel),
            decision_id,
            deadline_from_timeout(context.time_remaining()),
        )
        try:
            async for event in events:
                if isinstance(event, Delta):
                    yield support_pb2.RespondEvent(delta=support_pb2.TextDelta(text=event.text))
                else:
                    yield support_pb2.RespondEvent(final=support_pb2.Final(
                        decision_id=event.decision_id, route=event.route, intent=event.intent,
                        confidence=event.confidence,
                        citations=[types_pb2.Citation(source_id=c.source_id, kind=c.kind)
                                   for c in event.citations],
                        actions=[types_pb2.Action(kind=a.kind, product_ids=a.product_ids,
                                                  action_id=a.action_id, status=a.status,
                                                  detail=a.detail) for a in event.actions],
                        outcome=event.outcome, rules_fired=event.rules_fired,
                    ))
        finally:
            await events.aclose()  # records a cancelled call even when we stop at a yield

    async def Feedback(
        self, request: support_pb2.FeedbackRequest, context: aio.ServicerContext
    ) -> support_pb2.FeedbackResponse:
        feedback_id = await self._feedback.submit(FeedbackInput(
            decision_id=request.decision_id, csat=request.csat,
            nps=request.nps if request.HasField("nps") else None, resolved=request.resolved,
            converted_order_id=request.converted_order_id, text=request.text,
        ))
        return support_pb2.FeedbackResponse(feedback_id=feedback_id)

    async def NextBestActions(
        self, request: support_pb2.NextBestActionsRequest, context: aio.ServicerContext
    ) -> support_pb2.NextBestActionsResponse:
        if self._retention is None:
            raise Unavailable("retention is not configured on this server")
        result = await self._retention.next_best_actions(
            request.customer_id, request.limit, request.as_of)
        return next_best_actions_pb(result)
