"""Access control over real channels: each service answers only the roles it should,
bad and expired credentials are refused, the agent acting is the credential's, rate
limits shed with a retry hint, the CLI sends $AFTERCARE_API_KEY; TLS, mutual TLS with
common-name roles, and certificate rotation without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from aftercare.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)
from server.access.credentials import hash_key
from server.cli import main
from tests.certs import CertAuthority
from tests.functional.harness import ServerThread

SECRET = "functional-test-hs256-secret-0123456789"
KEYS = {"client": "k-client", "agent": "k-agent", "admin": "k-admin", "limited": "k-limited"}


@pytest.fixture(scope="module")
def server(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ServerThread]:
    base = tmp_path_factory.mktemp("auth")
    (base / "hs256").write_text(SECRET)
    auth = {
        "enabled": True,
        "api_keys": [
            {"id": "gw-1", "sha256": hash_key(KEYS["client"]), "roles": ["client"]},
            {"id": "desk-1", "sha256": hash_key(KEYS["agent"]), "roles": ["agent"]},
            {"id": "ops", "sha256": hash_key(KEYS["admin"]), "roles": ["admin"]},
            {"id": "tiny", "sha256": hash_key(KEYS["limited"]), "roles": ["client"],
             "rate_per_s": 0.5, "burst": 2},
        ],
        "jwt": {"hs256_secret_file": str(base / "hs256"), "audience": "aftercare"},
    }
    srv = ServerThread({**server_overrides, "auth": auth,
                        "records": {"path": str(base / "records.sqlite")}}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with server.channel() as ch:
        yield ch


def _key(role: str) -> list[tuple[str, str]]:
    return [("x-api-key", KEYS[role])]


def _bearer(claims: dict[str, Any]) -> list[tuple[str, str]]:
    return [("authorization", "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256"))]


def _code(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        call()
        return grpc.StatusCode.OK
    except grpc.RpcError as err:
        return err.code()


# One cheap call per service. Support: an unknown customer is NOT_FOUND once past auth.
def _calls(ch: grpc.Channel) -> dict[str, Callable[[list[tuple[str, str]]], Any]]:
    support, agent = support_pb2_grpc.SupportStub(ch), agent_pb2_grpc.AgentStub(ch)
    admin = admin_pb2_grpc.AdminStub(ch)
    return {
        "Support": lambda md: support.GetCustomerContext(
            support_pb2.CustomerContextRequest(customer_id="C999999"), metadata=md, timeout=30),
        "Agent": lambda md: agent.ListHandoffs(agent_pb2.ListHandoffsRequest(), metadata=md,
                                               timeout=30),
        "Admin": lambda md: admin.ListModels(admin_pb2.ListModelsRequest(), metadata=md,
                                             timeout=30),
    }


PASSED = {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}
MATRIX = {  # (role, service) -> allowed
    ("client", "Support"): True, ("client", "Agent"): False, ("client", "Admin"): False,
    ("agent", "Support"): True, ("agent", "Agent"): True, ("agent", "Admin"): False,
    ("admin", "Support"): True, ("admin", "Agent"): True, ("admin", "Admin"): True,
}


@pytest.mark.parametrize(("role", "service"), sorted(MATRIX))
def test_each_role_reaches_only_its_services(channel: grpc.Channel, role: str,
                                             service: str) -> None:
    call = _calls(channel)[service]
    want = MATRIX[(role, service)]
    by_key = _code(lambda: call(_key(role)))
    token = {"sub": f"jwt-{role}", "roles": [role], "exp": int(time.time()) + 60,
             "aud": "aftercare"}
    by_jwt = _code(lambda: call(_bearer(token)))
    for code in (by_key, by_jwt):
        if want:
            assert code in PASSED, (role, service, code)
        else:
            assert code == grpc.StatusCode.PERMISSION_DENIED, (role, service, code)


@pytest.mark.parametrize("service", ["Support", "Agent", "Admin"])
def test_missing_bad_and_expired_credentials_are_unauthenticated(
        channel: grpc.Channel, service: str) -> None:
    call = _calls(channel)[service]
    now = int(time.time())
    bad = [
        [],
        [("x-api-key", "k-admin-typo")],
        [("authorization", "Bearer garbage")],
        _bearer({"sub": "a", "roles": ["admin"], "exp": now - 3600, "aud": "aftercare"}),
        _bearer({"sub": "a", "roles": ["admin"], "exp": now + 60, "aud": "someone-else"}),
        [("authorization", "Bearer " + jwt.encode(
            {"sub": "a", "roles": ["admin"], "exp": now + 60, "aud": "aftercare"},
            "not-the-secret-but-long-enough-0123456789", algorithm="HS256"))],
    ]
    for md in bad:
        try:
            call(md)
            raise AssertionError(f"{service} answered {md}")
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (md, err.code())
            assert err.details() == "missing or invalid credentials"


def test_health_and_reflection_stay_open(channel: grpc.Channel) -> None:
    status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                      timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(iter(refl.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)))
    names = {s.name for s in reply.list_services_response.service}
    assert "aftercare.v1.Admin" in names


def test_the_acting_agent_is_the_credential(channel: grpc.Channel) -> None:
    support, agent = support_pb2_grpc.SupportStub(channel), agent_pb2_grpc.AgentStub(channel)
    events = list(support.Respond(support_pb2.RespondRequest(
        text="this is ridiculous, get me a human now", customer_id="C000001",
        conversation_id="auth-actor"), metadata=_key("client"), timeout=60))
    assert events[-1].final.route == "human"
    handoff_id = next(a.action_id for a in events[-1].final.actions if a.kind == "handoff")
    with pytest.raises(grpc.RpcError) as err:  # naming another agent
        agent.ClaimHandoff(agent_pb2.ClaimHandoffRequest(handoff_id=handoff_id,
                                                         agent_id="someone-else"),
                           metadata=_key("agent"), timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    claimed = agent.ClaimHandoff(agent_pb2.ClaimHandoffRequest(handoff_id=handoff_id),
                                 metadata=_key("agent"), timeout=30)
    assert claimed.state == "claimed" and claimed.agent_id == "desk-1"


def test_cli_commands_send_the_api_key_from_the_environment(
        server: ServerThread, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    kpis = ["kpis", "--json", "--server", server.address]
    monkeypatch.setenv("AFTERCARE_API_KEY", KEYS["admin"])
    assert main(kpis) == 0
    monkeypatch.setenv("AFTERCARE_API_KEY", KEYS["client"])  # Admin is not for clients
    assert main(kpis) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
    monkeypatch.delenv("AFTERCARE_API_KEY")
    assert main(kpis) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_rate_limit_sheds_with_a_retry_hint(channel: grpc.Channel) -> None:
    call = _calls(channel)["Support"]
    codes, trailers = [], []
    for _ in range(4):
        try:
            call(_key("limited"))
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            codes.append(err.code())
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                trailers.append(dict(err.trailing_metadata() or ()))
    assert codes[:2] == [grpc.StatusCode.NOT_FOUND] * 2  # the burst passes
    assert codes[2:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
    assert len(trailers) == 2 and all(int(t["retry-after-ms"]) > 0 for t in trailers)
    assert _code(lambda: call(_key("client"))) == grpc.StatusCode.NOT_FOUND  # others unaffected


# -- TLS ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_server(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[tuple[ServerThread, CertAuthority, Path]]:
    base = tmp_path_factory.mktemp("tls")
    ca = CertAuthority()
    tls = {**ca.write_server(base), "client_ca_file": str(base / "ca.crt")}
    cert, key = ca.issue("agent-desk")
    creds = grpc.ssl_channel_credentials(ca.pem, key, cert)
    overrides = {**server_overrides, "server": {"tls": tls},
                 "records": {"path": str(base / "records.sqlite")},
                 "auth": {"enabled": True,
                          "mtls": [{"common_name": "agent-desk", "roles": ["agent"]}]}}
    srv = ServerThread(overrides, credentials=creds).start()
    yield srv, ca, base
    srv.stop()


def test_mutual_tls_maps_the_common_name_to_roles(
        tls_server: tuple[ServerThread, CertAuthority, Path]) -> None:
    srv, ca, _ = tls_server
    with srv.channel() as ch:
        calls = _calls(ch)
        assert _code(lambda: calls["Agent"]([])) == grpc.StatusCode.OK
        assert _code(lambda: calls["Support"]([])) == grpc.StatusCode.NOT_FOUND
        assert _code(lambda: calls["Admin"]([])) == grpc.StatusCode.PERMISSION_DENIED
    cert, key = ca.issue("unknown-desk")  # a valid certificate without a role mapping
    with grpc.secure_channel(srv.address, grpc.ssl_channel_credentials(ca.pem, key, cert)) as ch:
        assert _code(lambda: _calls(ch)["Agent"]([])) == grpc.StatusCode.UNAUTHENTICATED
    # no client certificate: the handshake itself fails
    with grpc.secure_channel(srv.address, grpc.ssl_channel_credentials(ca.pem)) as ch:
        assert _code(lambda: _calls(ch)["Agent"]([])) == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(srv.address) as ch:  # plaintext to a TLS port
        assert _code(lambda: _calls(ch)["Agent"]([])) == grpc.StatusCode.UNAVAILABLE


def test_certificates_rotate_on_reload_without_a_restart(
        tls_server: tuple[ServerThread, CertAuthority, Path]) -> None:
    srv, ca, base = tls_server
    new_ca = CertAuthority("rotated CA")
    new_ca.write_server(base)  # new server key + certificate, same paths
    (base / "ca.crt").write_bytes(ca.pem + new_ca.pem)  # clients of either CA
    assert srv.app is not None
    srv.app.reload_tls()
    cert, key = new_ca.issue("agent-desk")
    creds = grpc.ssl_channel_credentials(new_ca.pem, key, cert)  # trusts only the new CA
    with grpc.secure_channel(srv.address, creds) as ch:
        assert _code(lambda: _calls(ch)["Agent"]([])) == grpc.StatusCode.OK
    assert srv.app.tls.reloads == 1
