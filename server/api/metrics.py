"""RPC metrics interceptor: `aftercare_rpc_requests_total{service,method,code}` and
`aftercare_rpc_duration_seconds{service,method}` for every call, rejected ones included.

It sits outside the error interceptor, so a domain error arrives here as the abort
that the error interceptor made of it, with its status code on the context.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from grpc import aio

from server.api.wrapping import HandlerWrapper, as_generator, replaced
from server.observability.metrics import Metrics

_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}


def _code_name(context: aio.ServicerContext) -> str:
    try:
        code: Any = context.code()
    except (AttributeError, NotImplementedError):  # pragma: no cover - old grpcio
        return "UNKNOWN"
    if code is None:
        return "UNKNOWN"
    if isinstance(code, grpc.StatusCode):
        return code.name
    return _BY_VALUE.get(int(code), grpc.StatusCode.UNKNOWN).name


class MetricsInterceptor(HandlerWrapper):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        super().__init__()

    def wrap(self, handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
        service, _, method = full_method.lstrip("/").partition("/")
        requests = self._metrics.rpc_requests
        duration = self._metrics.rpc_duration.labels(service, method)
        ok = requests.labels(service, method, "OK")

        def finish(started: float, code: str) -> None:
            duration.observe(time.perf_counter() - started)
            (ok if code == "OK" else requests.labels(service, method, code)).inc()

        if handler.unary_unary is not None:
            inner: Any = handler.unary_unary

            async def unary(request: Any, context: aio.ServicerContext) -> Any:
                started, code = time.perf_counter(), "OK"
                try:
                    return await inner(request, context)
                except aio.AbortError:
                    code = _code_name(context)
                    raise
                except asyncio.CancelledError:
                    code = "CANCELLED"
                    raise
                except Exception:
                    code = "UNKNOWN"
                    raise
                finally:
                    finish(started, code)

            return replaced(handler, unary=unary)
        if handler.unary_stream is not None:
            inner_stream: Any = as_generator(handler.unary_stream)

            async def stream(request: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
                started, code = time.perf_counter(), "OK"
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except aio.AbortError:
                    code = _code_name(context)
                    raise
                except (asyncio.CancelledError, GeneratorExit):
                    code = "CANCELLED"
                    raise
                except Exception:
                    code = "UNKNOWN"
                    raise
                finally:
                    finish(started, code)

            return replaced(handler, stream=stream)
        return handler
