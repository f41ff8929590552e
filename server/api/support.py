"""aftercare.v1.Support servicer: decode the request, call the core, encode the answer."""

from __future__ import annotations

from grpc import aio

from aftercare.v1 import support_pb2, support_pb2_grpc, types_pb2
from server.api.knowledge_pb import customer_context_pb, passage_pb, recommendation_pb
from server.inference.service import InferenceService, deadline_from_timeout
from server.knowledge.service import KnowledgeService


class SupportServicer(support_pb2_grpc.SupportServicer):
    def __init__(self, inference: InferenceService, knowledge: KnowledgeService) -> None:
        self._inference = inference
        self._knowledge = knowledge

    async def Classify(
        self, request: support_pb2.ClassifyRequest, context: aio.ServicerContext
    ) -> support_pb2.ClassifyResponse:
        result = await self._inference.classify(
            request.text,
            top_k=request.top_k,
            model=request.model,
            deadline=deadline_from_timeout(context.time_remaining()),
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
