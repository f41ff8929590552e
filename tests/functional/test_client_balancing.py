"""Two real servers on port 0 behind one client channel, as replicas behind
`dns:///aftercare-headless:50051` are: calls spread round_robin over both, a replica
that reports NOT_SERVING leaves the rotation, and a connection past
`server.max_connection_age_ms` is closed and replaced without a failed call."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.api.client import open_channel
from server.cli import main
from tests.functional.harness import ServerThread

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def replicas(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[ServerThread, ServerThread]]:
    started: list[ServerThread] = []
    try:
        for name, server in (("a", {"max_connection_age_ms": 300,
                                    "max_connection_age_grace_ms": 200}), ("b", {})):
            records = {"path": str(tmp_path_factory.mktemp(f"replica-{name}") / "r.sqlite")}
            started.append(ServerThread({**server_overrides, "records": records,
                                         "server": server}).start())
        yield started[0], started[1]
    finally:
        for srv in started:
            srv.stop()


def _classified(srv: ServerThread) -> int:
    """Texts this server's classifier has run on: a counter only its own calls move."""
    assert srv.app is not None
    return int(srv.app.registry.get("classifier").batcher.stats.items)  # type: ignore[union-attr]


def _classify(targets: str, calls: int) -> None:
    with open_channel(targets) as channel:
        stub = support_pb2_grpc.SupportStub(channel)
        for i in range(calls):
            stub.Classify(support_pb2.ClassifyRequest(text=f"where is my order {i}?"),
                          timeout=30)


def test_calls_spread_over_both_replicas(replicas: tuple[ServerThread, ServerThread]) -> None:
    a, b = replicas
    before = (_classified(a), _classified(b))
    _classify(f"{a.address},{b.address}", 20)
    got = (_classified(a) - before[0], _classified(b) - before[1])
    assert sum(got) == 20
    assert min(got) >= 5, got  # round_robin; pick_first would send all 20 to one


def test_a_replica_that_is_not_serving_leaves_the_rotation(
        replicas: tuple[ServerThread, ServerThread]) -> None:
    a, b = replicas
    assert b.app is not None
    b.call(b.app.health.set("", NOT_SERVING))  # as while it warms up or drains
    try:
        before = (_classified(a), _classified(b))
        _classify(f"localhost:{a.port},localhost:{b.port}", 10)
        assert (_classified(a) - before[0], _classified(b) - before[1]) == (10, 0)
    finally:
        b.call(b.app.health.set("", SERVING))


def test_an_old_connection_is_replaced_without_a_failed_call(
        replicas: tuple[ServerThread, ServerThread]) -> None:
    """Server a closes each connection after ~300 ms: the audit trail (the peer
    address of each admin call) shows the client on a new connection, and every call
    got the server's own answer."""
    a, _ = replicas
    assert a.app is not None
    codes = set()
    with open_channel(a.address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:  # audited, and changes nothing: that version is not loaded
                stub.UnloadModel(admin_pb2.UnloadModelRequest(name="no-such-model", version=1),
                                 timeout=10)
            except grpc.RpcError as err:
                codes.add(err.code())
            peers = {r.actor for r in a.call(a.app.audit.audit_records(1000))
                     if r.action == "UnloadModel"}
            if len(peers) >= 3:
                break
            time.sleep(0.05)  # spread the calls over a few connection ages
    assert codes == {grpc.StatusCode.NOT_FOUND}
    assert len(peers) >= 3, peers


def test_cli_commands_take_several_servers(replicas: tuple[ServerThread, ServerThread],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    a, b = replicas
    both = f"{a.address},{b.address}"
    assert main(["ask", "where is my order?", "--customer", "C000001", "--server", both]) == 0
    assert "decision:" in capsys.readouterr().out
    assert main(["kpis", "--json", "--server", both]) == 0
    assert main(["models", "status", "--json", "--server", both]) == 0
    capsys.readouterr()
    # Loaded versions are each replica's own: a change through round_robin would land
    # on one of them, so it is refused (exit 2) before any call.
    assert main(["models", "unload", "intent-classifier", "1", "--server", both]) == 2
    assert "names several servers" in capsys.readouterr().err
