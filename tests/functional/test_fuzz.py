"""Fuzz every RPC of every service over a real channel (the Open Inference Protocol's
tensor decoding included: random shapes, datatypes and raw length-prefixed contents).

Random requests (tests/functional/fuzz.py walks each request descriptor) may only get
the documented status codes: never UNKNOWN, never INTERNAL for input that is merely
bad. Raw garbage bytes as a request message get INVALID_ARGUMENT. Error messages
quote at most a short prefix of the input, no raw input reaches the logs, and the
server is healthy afterwards. `AFTERCARE_FUZZ_EXAMPLES` sets the examples per method
(`make fuzz` runs many more than CI).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings

from aftercare.inference.v2 import grpc_service_pb2
from aftercare.v1 import admin_pb2, agent_pb2, support_pb2
from tests.functional.fuzz import messages
from tests.functional.harness import ServerThread

EXAMPLES = int(os.environ.get("AFTERCARE_FUZZ_EXAMPLES", "20"))
# Re-ingesting a shop or reloading a policy from a random path is slower than a lookup.
_FEWER = {"ReloadData": 4, "ReloadPolicies": 8}
DOCUMENTED = {
    grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
}
_MAX_DETAIL = 400  # an error message quotes a short prefix of the input, never all of it


def _methods() -> list[MethodDescriptor]:
    out = []
    for pb2 in (support_pb2, agent_pb2, admin_pb2, grpc_service_pb2):
        for service in pb2.DESCRIPTOR.services_by_name.values():
            out.extend(service.methods)
    return out


METHODS = _methods()


def _request_class(m: MethodDescriptor) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(m.input_type)


def _response_class(m: MethodDescriptor) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(m.output_type)


@pytest.fixture(scope="module")
def server(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ServerThread]:
    base = tmp_path_factory.mktemp("fuzz")
    srv = ServerThread({**server_overrides,
                        "records": {"path": str(base / "records.sqlite")}}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def _call(channel: grpc.Channel, m: MethodDescriptor, request: Any,
          serializer: Any = None) -> grpc.StatusCode:
    path = f"/{m.containing_service.full_name}/{m.name}"
    ser = serializer or (lambda msg: msg.SerializeToString())
    deser = _response_class(m).FromString
    try:
        if m.server_streaming:
            stream = channel.unary_stream(path, request_serializer=ser,
                                          response_deserializer=deser)
            for _ in stream(request, timeout=30):
                pass
        else:
            channel.unary_unary(path, request_serializer=ser,
                                response_deserializer=deser)(request, timeout=30)
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        details = err.details() or ""
        assert len(details) <= _MAX_DETAIL, (m.name, code, details[:80], len(details))
        return code


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}."
                         f"{m.name}")
def test_random_requests_get_documented_codes(channel: grpc.Channel, method: MethodDescriptor,
                                              caplog: pytest.LogCaptureFixture) -> None:
    cls = _request_class(method)
    seen: dict[grpc.StatusCode, int] = {}

    @settings(max_examples=_FEWER.get(method.name, EXAMPLES), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(messages(method.input_type, cls))
    def check(request: Any) -> None:
        code = _call(channel, method, request)
        seen[code] = seen.get(code, 0) + 1
        assert code in DOCUMENTED, (method.name, code, str(request)[:200])

    with caplog.at_level(logging.INFO):
        check()
    assert sum(seen.values()) >= 1
    for rec in caplog.records:  # a raw fuzzed string never reaches the logs
        assert "x" * 300 not in rec.getMessage(), rec.getMessage()[:120]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}."
                         f"{m.name}")
def test_garbage_bytes_are_invalid_argument(channel: grpc.Channel,
                                            method: MethodDescriptor) -> None:
    # A field tag with wire type 7 (invalid) followed by junk: no message parses it.
    for garbage in (b"\xff\xff\xff\xff\x0f", b"\x0a\xff\xff\xff\xff\x0f"):
        code = _call(channel, method, garbage, serializer=lambda b: b)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method.name, code)


def test_server_healthy_after_fuzzing(channel: grpc.Channel) -> None:
    status = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    # and still answers a real request
    resp = grpc_call_classify(channel)
    assert resp.intents


def grpc_call_classify(channel: grpc.Channel) -> Any:
    from aftercare.v1 import support_pb2_grpc

    return support_pb2_grpc.SupportStub(channel).Classify(
        support_pb2.ClassifyRequest(text="where is my order?"), timeout=30)


