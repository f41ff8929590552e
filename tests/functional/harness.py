"""Run the real App in its own thread and event loop, bound to port 0, for functional tests.

Tests talk to it through real channels, like any client. Start-up is awaited by
polling the health service, never by sleeping.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import App, build_app
from server.config import load_config


class ServerThread:
    def __init__(self, overrides: Mapping[str, Any],
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        server = {"host": "127.0.0.1", "port": 0, **overrides.get("server", {})}
        self.config = load_config(None, {**overrides, "server": server})
        self.credentials = credentials  # for a TLS server: what the test's clients present
        self.app: App | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def start(self, timeout: float = 300.0) -> ServerThread:
        self._thread.start()

        async def boot() -> None:
            self.app = build_app(self.config)
            await self.app.start()

        fut: Future[None] = asyncio.run_coroutine_threadsafe(boot(), self._loop)
        fut.result(timeout)
        assert self.app is not None
        self.port = self.app.port
        with self.channel() as ch:
            status = health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            ).status
        assert status == health_pb2.HealthCheckResponse.SERVING
        return self

    def channel(self) -> grpc.Channel:
        if self.credentials is not None:
            return grpc.secure_channel(self.address, self.credentials)
        return grpc.insecure_channel(self.address)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        """Run a coroutine on the server's loop (to poke at internals from a test)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float | None = None) -> None:
        if self.app is not None:
            self.call(self.app.stop(grace))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()
