"""Server streams through the interceptors in both of grpc.aio's styles: an async
generator that yields, and a coroutine that writes with `context.write` (the standard
health service's Watch, which grpc clients use for client-side health checking)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from server.api.errors import ErrorInterceptor
from server.api.metrics import MetricsInterceptor
from server.errors import NotFound
from server.observability.metrics import Metrics

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _written(request: bytes, context: aio.ServicerContext) -> None:
    await context.write(b"one")
    if request == b"fail":
        raise NotFound("no such thing")
    await context.write(b"two")


async def _yielded(request: bytes, context: aio.ServicerContext) -> Any:
    yield b"one"
    if request == b"fail":
        raise NotFound("no such thing")
    yield b"two"


async def test_both_stream_styles_pass_the_interceptors() -> None:
    metrics = Metrics()
    server = aio.server(interceptors=[MetricsInterceptor(metrics), ErrorInterceptor()])
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", {
        "Written": grpc.unary_stream_rpc_method_handler(_written),
        "Yielded": grpc.unary_stream_rpc_method_handler(_yielded)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        await health.set("", SERVING)
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=10)
            updates = watch.__aiter__()
            assert (await updates.__anext__()).status == SERVING
            await health.set("", NOT_SERVING)
            assert (await updates.__anext__()).status == NOT_SERVING
            watch.cancel()
            for method in ("Written", "Yielded"):
                call = channel.unary_stream(f"/t.T/{method}")
                assert [m async for m in call(b"ok", timeout=10)] == [b"one", b"two"]
                failing, got = call(b"fail", timeout=10), []
                with pytest.raises(aio.AioRpcError) as err:
                    async for m in failing:
                        got.append(m)
                assert got == [b"one"], method  # what was sent before the error stays sent
                assert err.value.code() == grpc.StatusCode.NOT_FOUND, method
    finally:
        await server.stop(0)
    counted = {(s.labels["method"], s.labels["code"]): s.value
               for m in metrics.registry.collect() if m.name == "aftercare_rpc_requests"
               for s in m.samples if s.name.endswith("_total")}
    assert counted[("Written", "OK")] == counted[("Yielded", "OK")] == 1
    assert counted[("Written", "NOT_FOUND")] == counted[("Yielded", "NOT_FOUND")] == 1
