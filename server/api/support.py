"""aftercare.v1.Support servicer: decode the request, call the core, encode the answer."""

from __future__ import annotations

from grpc import aio

from aftercare.v1 import support_pb2, support_pb2_grpc, types_pb2
from server.inference.service import InferenceService, deadline_from_timeout


class SupportServicer(support_pb2_grpc.SupportServicer):
    def __init__(self, inference: InferenceService) -> None:
        self._inference = inference

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
