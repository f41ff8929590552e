"""Assist mode over a real channel: on an assist channel Respond streams a draft
(route "draft"), and agents list and review it through the Agent service."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import agent_pb2, agent_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread


class Desk:
    def __init__(self, srv: ServerThread, db: Path) -> None:
        self.db = db
        self.channel = grpc.insecure_channel(srv.address)
        self.support = support_pb2_grpc.SupportStub(self.channel)
        self.agent = agent_pb2_grpc.AgentStub(self.channel)

    def respond(self, text: str, customer_id: str, channel: str,
                ) -> tuple[str, support_pb2.Final]:
        deltas, final = [], None
        for ev in self.support.Respond(support_pb2.RespondRequest(
                text=text, customer_id=customer_id, channel=channel), timeout=60):
            if ev.HasField("delta"):
                deltas.append(ev.delta.text)
            else:
                final = ev.final
        assert final is not None
        return "".join(deltas), final

    def review(self, decision_id: str, verdict: str, text: str = "",
               agent: str = "agent-1") -> agent_pb2.Draft:
        return self.agent.ReviewDraft(agent_pb2.ReviewDraftRequest(
            decision_id=decision_id, agent_id=agent, verdict=verdict, edited_text=text))


@pytest.fixture(scope="module")
def desk(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    db = tmp_path_factory.mktemp("assist") / "records.sqlite"
    srv = ServerThread({**server_overrides, "records": {"path": str(db)},
                        "channels": {"email": {"mode": "assist"}}}).start()
    d = Desk(srv, db)
    yield d
    d.channel.close()
    srv.stop()


def _code(fn: object, *args: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        fn(*args)  # type: ignore[operator]
    return err.value.code()


def _customers(desk: Desk, n: int) -> list[str]:
    """Standard customers with orders and no open refund: their questions are answered
    without a human (one question each, so no repeat-contact rule fires)."""
    out = []
    for i in range(1, 80):
        ctx = desk.support.GetCustomerContext(
            support_pb2.CustomerContextRequest(customer_id=f"C{i:06d}"))
        if ctx.segment == "standard" and ctx.orders and not ctx.open_refunds:
            out.append(ctx.customer_id)
        if len(out) == n:
            return out
    raise AssertionError("not enough suitable demo customers")


def test_assist_channel_drafts_are_reviewed_by_agents(desk: Desk) -> None:
    customers = _customers(desk, 5)
    _, chat = desk.respond("where is my order?", customers[0], "chat")
    assert chat.route == "automated"  # chat stays automatic
    _, human = desk.respond("I want to speak to a real person please", customers[1], "email")
    assert human.route == "human"  # a handoff stays a handoff on an assist channel
    drafts = []
    for customer in customers[2:]:
        text, final = desk.respond("where is my order?", customer, "email")
        assert final.route == "draft" and text  # streamed as usual, marked as a draft
        drafts.append((final, text, customer))
    listed = desk.agent.ListDrafts(agent_pb2.ListDraftsRequest())
    by_id = {d.decision_id: d for d in listed.drafts}
    assert set(by_id) == {f.decision_id for f, _, _ in drafts}  # only assisted answers
    for final, text, customer in drafts:
        d = by_id[final.decision_id]
        assert (d.state, d.channel, d.customer_id, d.intent, d.text) == (
            "pending", "email", customer, final.intent, text)
    (first, _, _), (second, _, _), (third, _, _) = drafts
    accepted = desk.review(first.decision_id, "accepted")
    assert (accepted.state, accepted.agent_id) == ("accepted", "agent-1")
    assert accepted.reviewed_at
    edited = desk.review(second.decision_id, "edited",
                         "Delivery is free above EUR 50. Write to jane.doe@example.com")
    # The agent's edit is stored like every other text: without PII.
    assert (edited.state, edited.edited_text) == (
        "edited", "Delivery is free above EUR 50. Write to [EMAIL]")
    # Review errors map to their status codes.
    assert _code(desk.review, third.decision_id, "maybe") == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(desk.review, third.decision_id, "edited") == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(desk.review, "dec-unknown", "accepted") == grpc.StatusCode.NOT_FOUND
    assert _code(desk.review, first.decision_id, "rejected") == \
        grpc.StatusCode.FAILED_PRECONDITION
    desk.review(third.decision_id, "rejected")
    left = desk.agent.ListDrafts(agent_pb2.ListDraftsRequest())
    assert list(left.drafts) == []
    done = desk.agent.ListDrafts(agent_pb2.ListDraftsRequest(state="edited"))
    assert [d.decision_id for d in done.drafts] == [second.decision_id]
    assert sum(r.reviewed for r in left.rates) == 3
    assert sum(r.accepted for r in left.rates) == 1 and sum(r.edited for r in left.rates) == 1
    # The table the KPI reads, in the server's record database.
    with sqlite3.connect(desk.db) as conn:
        states = dict(conn.execute(
            "SELECT state, COUNT(*) FROM drafts GROUP BY state").fetchall())
    assert states == {"accepted": 1, "edited": 1, "rejected": 1}
