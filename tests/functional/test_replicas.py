"""Two replicas, one database: two `aftercare serve` processes on different ports with
the same `records.url` (a throwaway PostgreSQL cluster). A handoff made through A is
listed and claimed through B (and a second claim through A is refused), B returns a
decision made on A, and the KPIs on either replica count the responses of both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from aftercare.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    support_pb2,
    support_pb2_grpc,
)
from tests.functional.serverproc import ServerProcess, write_config


@pytest.fixture()
def replicas(tmp_path: Path, server_overrides: dict, pg_cluster: Any
             ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    url = pg_cluster.create_database("replicas")
    a = ServerProcess(write_config(tmp_path, server_overrides, url, "a"), tmp_path / "a.log")
    try:
        b = ServerProcess(write_config(tmp_path, server_overrides, url, "b"), tmp_path / "b.log")
    except BaseException:
        a.stop()
        raise
    try:
        yield a, b
    finally:
        b.stop()
        a.stop()


def _respond(port: int, text: str, conversation: str) -> support_pb2.Final:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        final = None
        for ev in support_pb2_grpc.SupportStub(ch).Respond(support_pb2.RespondRequest(
                text=text, customer_id="C000001", conversation_id=conversation), timeout=60):
            if ev.HasField("final"):
                final = ev.final
    assert final is not None
    return final


@pytest.mark.slow
def test_two_replicas_share_handoffs_decisions_and_kpis(
        replicas: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = replicas
    assert a.port != b.port
    handed = _respond(a.port, "I want to speak to a real person please", "rep-1")
    assert handed.route == "human"
    handoff_id = next(x.action_id for x in handed.actions if x.kind == "handoff")
    answered = _respond(b.port, "where is my order?", "rep-2")

    with grpc.insecure_channel(f"127.0.0.1:{b.port}") as ch_b, \
            grpc.insecure_channel(f"127.0.0.1:{a.port}") as ch_a:
        agent_b, agent_a = agent_pb2_grpc.AgentStub(ch_b), agent_pb2_grpc.AgentStub(ch_a)
        pending = agent_b.ListHandoffs(agent_pb2.ListHandoffsRequest(), timeout=30)
        assert handoff_id in [h.handoff_id for h in pending.handoffs]
        claimed = agent_b.ClaimHandoff(agent_pb2.ClaimHandoffRequest(
            handoff_id=handoff_id, agent_id="agent-b"), timeout=30)
        assert claimed.state == "claimed"
        with pytest.raises(grpc.RpcError) as err:
            agent_a.ClaimHandoff(agent_pb2.ClaimHandoffRequest(
                handoff_id=handoff_id, agent_id="agent-a"), timeout=30)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

        admin_b, admin_a = admin_pb2_grpc.AdminStub(ch_b), admin_pb2_grpc.AdminStub(ch_a)
        made_on_a = admin_b.GetDecision(admin_pb2.GetDecisionRequest(
            decision_id=handed.decision_id), timeout=30)
        assert made_on_a.decision_id == handed.decision_id
        made_on_b = admin_a.GetDecision(admin_pb2.GetDecisionRequest(
            decision_id=answered.decision_id), timeout=30)
        assert made_on_b.decision_id == answered.decision_id

        for admin in (admin_a, admin_b):
            kpis = admin.GetKpis(admin_pb2.GetKpisRequest(), timeout=30)
            assert kpis.responses == 2 and kpis.conversations == 2
            assert kpis.escalation_rate == pytest.approx(0.5)
