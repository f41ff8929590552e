"""The multi-process load generator against a real gRPC server (a health service on port
0): every worker's calls are counted and merged, and unexpected codes fail the run."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from bench.loadgen import UnexpectedFailures
from bench.workers import LoadWorkers


@pytest.fixture
def health_target() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_two_workers_merge_an_open_and_a_closed_loop(health_target: str) -> None:
    with LoadWorkers([health_target], ["x"], workers=2) as lw:
        opened = lw.open("health", 200.0, 0.5, seed=2)
        closed = lw.closed("health", 3, 0.3)
    assert opened.workers == 2 and opened.unexpected == 0
    assert opened.codes == {"OK": opened.requests} and opened.requests > 50
    assert closed.workers == 2 and closed.codes == {"OK": closed.requests}


def test_unexpected_codes_fail_the_run_and_are_counted() -> None:
    with socket.socket() as s:  # a port nobody listens on: every call is UNAVAILABLE
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
        with LoadWorkers([dead], ["x"], workers=2) as lw:
            counted = lw.open("health", 100.0, 0.2, timeout_s=1.0, strict=False)
            with pytest.raises(UnexpectedFailures, match="UNAVAILABLE"):
                lw.open("health", 100.0, 0.2, timeout_s=1.0)
    assert counted.requests == 0
    assert counted.unexpected == sum(counted.codes.values()) > 0
    assert set(counted.codes) == {"UNAVAILABLE"}
