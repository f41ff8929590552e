"""The shape every aftercare interceptor shares: wrap a method's handler once.

grpc.aio calls `intercept_service` on every RPC; building a wrapped handler each time
would cost allocations on the hot path. A `HandlerWrapper` builds it once per method
and reuses it while the inner handler object stays the same.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

StreamHandler = Callable[..., Any]  # (request, context) -> async iterator or awaitable


def as_generator(handler: StreamHandler) -> StreamHandler:
    """A unary-stream handler as an async generator function, for wrappers that
    iterate it. grpc.aio takes either an async generator, which yields the responses,
    or a coroutine that writes them with `context.write` (grpc_health's Watch does);
    `context.write` works from inside a wrapper's generator as well."""
    if inspect.isasyncgenfunction(handler):
        return handler

    async def writes(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        await handler(request, context)
        return
        yield  # never reached: it makes this an async generator that yields nothing

    return writes


def replaced(handler: grpc.RpcMethodHandler, *, unary: Any = None, stream: Any = None,
             request_deserializer: Any = None) -> grpc.RpcMethodHandler:
    """`handler` with its unary or unary-stream function replaced, and the same
    serializers (the request deserializer too, unless one is given)."""
    deserialize = request_deserializer or handler.request_deserializer
    if unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=deserialize,
            response_serializer=handler.response_serializer)
    return grpc.unary_stream_rpc_method_handler(
        stream, request_deserializer=deserialize,
        response_serializer=handler.response_serializer)


class HandlerWrapper(aio.ServerInterceptor):
    """Subclasses say which methods they wrap (`wraps`) and how (`wrap`)."""

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def wraps(self, method: str, handler: grpc.RpcMethodHandler) -> bool:
        return True

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self.wraps(method, handler):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped
