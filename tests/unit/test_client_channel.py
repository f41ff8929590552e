"""Client channels: one server, a DNS name, a list made into one multi-address target;
the API key on every call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from server.api.client import channel_args, fans_out, open_channel
from server.errors import InvalidInput


def _balancing(options: list) -> dict:
    config = json.loads(dict(options)["grpc.service_config"])
    return {"lb": config["loadBalancingConfig"], "health": config["healthCheckConfig"]}


@pytest.mark.parametrize("spec", ["localhost:50051", "dns:///aftercare-headless:50051",
                                  "ipv4:10.0.0.1:50051,10.0.0.2:50051", "unix:/tmp/s.sock"])
def test_grpc_targets_pass_through_with_round_robin(spec: str) -> None:
    target, options = channel_args(f" {spec} ")
    assert target == spec
    assert _balancing(options) == {"lb": [{"round_robin": {}}], "health": {"serviceName": ""}}
    assert "grpc.default_authority" not in dict(options)


def test_an_ip_list_becomes_one_multi_address_target() -> None:
    target, options = channel_args("10.0.0.1:50051, 10.0.0.2:50052,10.0.0.1:50051")
    assert target == "ipv4:10.0.0.1:50051,10.0.0.2:50052"  # duplicates once
    assert dict(options)["grpc.default_authority"] == "10.0.0.1:50051"
    assert _balancing(options)["lb"] == [{"round_robin": {}}]
    target, _ = channel_args("[::1]:50051,[fd00::2]:50051")
    assert target == "ipv6:[::1]:50051,[fd00::2]:50051"


def test_names_in_a_list_are_resolved_to_their_addresses() -> None:
    target, options = channel_args("localhost:7001,127.0.0.1:7002")
    assert target.startswith("ipv4:127.0.0.1:7001,")
    assert target.endswith("127.0.0.1:7002")
    assert dict(options)["grpc.default_authority"] == "localhost:7001"


@pytest.mark.parametrize("spec", ["", " ", "localhost,other:1", "a:1,b:notaport",
                                  "10.0.0.1:1,[::1]:2", "no-such-host.invalid:1,b:2"])
def test_bad_targets_are_clear_errors(spec: str) -> None:
    with pytest.raises(InvalidInput):
        channel_args(spec)


def test_which_targets_fan_out() -> None:
    assert not fans_out("localhost:50051")
    assert not fans_out("ipv4:10.0.0.1:50051")
    assert fans_out("a:1,b:2")
    assert fans_out("dns:///aftercare-headless:50051")


def test_open_channel_builds_a_channel_without_connecting() -> None:
    with open_channel("127.0.0.1:1,127.0.0.1:2") as channel:
        assert channel is not None


def test_the_api_key_rides_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def key(context: grpc.ServicerContext) -> None:
        seen.append(dict(context.invocation_metadata()).get("x-api-key"))

    def unary(request: bytes, context: grpc.ServicerContext) -> bytes:
        key(context)
        return b""

    def stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        key(context)
        yield b"x"

    server = grpc.server(ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.T", {
        "U": grpc.unary_unary_rpc_method_handler(unary),
        "S": grpc.unary_stream_rpc_method_handler(stream)})])
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    server.start()
    try:
        monkeypatch.setenv("AFTERCARE_API_KEY", "from-env")
        with open_channel(address) as channel:
            channel.unary_unary("/t.T/U")(b"", timeout=10)
            assert list(channel.unary_stream("/t.T/S")(b"", timeout=10)) == [b"x"]
        with open_channel(address, api_key="given") as channel:
            channel.unary_unary("/t.T/U")(b"", timeout=10)
        monkeypatch.delenv("AFTERCARE_API_KEY")
        with open_channel(address) as channel:
            channel.unary_unary("/t.T/U")(b"", timeout=10)
    finally:
        server.stop(0)
    assert seen == ["from-env", "from-env", "given", None]
