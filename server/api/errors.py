"""The one mapping from aftercare errors to gRPC status codes, applied by an interceptor.

Servicers raise domain errors (server/errors.py) and never call `context.abort`
themselves. A known error becomes its status code with its (client-safe) message;
anything else becomes INTERNAL with a request id that is logged with the traceback.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from grpc import aio

from server.api.wrapping import HandlerWrapper, as_generator, replaced
from server.errors import AftercareError, InvalidInput

log = logging.getLogger(__name__)

# Overload answers carry a retry hint (gRPC clients may use it for backoff).
_RETRY_CODES = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE}
# Status details travel as metadata: a message that echoes a huge input would break
# the client on its metadata limit. Raise sites quote with errors.short(); this caps
# whatever slips through.
MAX_DETAIL_CHARS = 300


class UndecodableRequest:
    """What a request deserializer yields for bytes that are no valid message; the
    handler answers INVALID_ARGUMENT (grpc's own default would be UNKNOWN)."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError, or anything a broken payload provokes
            return UndecodableRequest(exc.__class__.__name__)

    return decode


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, AftercareError):
        message = str(exc) or exc.__class__.__name__
        if len(message) > MAX_DETAIL_CHARS:
            message = message[: MAX_DETAIL_CHARS - 1] + "…"
        return grpc.StatusCode[exc.code_name], message
    request_id = uuid.uuid4().hex[:16]
    log.error("unhandled error, request id %s", request_id, exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})"


async def _abort(context: aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_of(exc)
    if code in _RETRY_CODES:
        retry = getattr(exc, "retry_after_ms", 100)
        context.set_trailing_metadata((("retry-after-ms", str(retry)),))
    await context.abort(code, message)


def _wrap_unary(fn: Any) -> Any:
    async def handler(request: Any, context: aio.ServicerContext) -> Any:
        if isinstance(request, UndecodableRequest):
            await _abort(context, InvalidInput("the request message could not be decoded"))
        try:
            return await fn(request, context)
        except (asyncio.CancelledError, aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc)

    return handler


def _wrap_stream(fn: Any) -> Any:
    async def handler(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
        if isinstance(request, UndecodableRequest):
            await _abort(context, InvalidInput("the request message could not be decoded"))
        try:
            async for item in fn(request, context):
                yield item
        except (asyncio.CancelledError, aio.AbortError):
            raise
        except Exception as exc:
            await _abort(context, exc)

    return handler


class ErrorInterceptor(HandlerWrapper):
    """Maps domain errors to status codes; undecodable requests to INVALID_ARGUMENT."""

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if handler.unary_unary is not None:
            return replaced(handler, unary=_wrap_unary(handler.unary_unary),
                            request_deserializer=safe_deserializer(handler.request_deserializer))
        if handler.unary_stream is not None:
            return replaced(handler, stream=_wrap_stream(as_generator(handler.unary_stream)),
                            request_deserializer=safe_deserializer(handler.request_deserializer))
        return handler
