"""NextBestActions and ScanActions over a real channel on the demo shop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread

KINDS = {"follow_up", "replenish", "warranty_expiry", "win_back", "cross_sell"}
SHOP_NOW = "2026-11-15T12:00:00+00:00"  # the demo shop's pinned as_of


class Clients:
    def __init__(self, srv: ServerThread) -> None:
        self.srv = srv
        self.channel = grpc.insecure_channel(srv.address)
        self.support = support_pb2_grpc.SupportStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)

    def nba(self, customer_id: str, limit: int = 0, as_of: str = ""
            ) -> support_pb2.NextBestActionsResponse:
        return self.support.NextBestActions(support_pb2.NextBestActionsRequest(
            customer_id=customer_id, limit=limit, as_of=as_of), timeout=60)

    def scan(self, **kw: object) -> tuple[list, dict[str, str]]:
        call = self.admin.ScanActions(admin_pb2.ScanActionsRequest(**kw), timeout=120)
        actions = list(call)
        return actions, dict(call.trailing_metadata())


@pytest.fixture(scope="module")
def clients(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    base: Path = tmp_path_factory.mktemp("retention")
    srv = ServerThread({**server_overrides,
                        "records": {"path": str(base / "records.sqlite")}}).start()
    c = Clients(srv)
    yield c
    c.channel.close()
    srv.stop()


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_next_best_actions_for_demo_customers(clients: Clients) -> None:
    seen: set[str] = set()
    for i in range(1, 60):
        resp = clients.nba(f"C{i:06d}", limit=10)
        assert resp.snapshot_id.startswith("snap-") and len(resp.actions) <= 10
        sendable = [bool(a.channel) for a in resp.actions]
        assert sendable == sorted(sendable, reverse=True)  # suppressed ones last
        for a in resp.actions:
            assert a.kind in KINDS and a.customer_id == f"C{i:06d}"
            assert a.reason and a.message and 0.0 < a.score <= 1.0
            assert a.channel or a.reason.startswith("suppressed (")
            assert _ts(a.due_at) <= _ts("2026-11-22T12:00:00+00:00")  # lookahead 7 days
            if a.kind in {"replenish", "warranty_expiry", "cross_sell"}:
                assert a.product_id
            seen.add(a.kind)
    assert {"follow_up", "replenish", "win_back", "cross_sell"} <= seen


def test_next_best_actions_respects_limit_and_as_of(clients: Clients) -> None:
    full = next(r for i in range(1, 200)
                if len(r := clients.nba(f"C{i:06d}", limit=10).actions) >= 2)
    cid = full[0].customer_id
    assert len(clients.nba(cid, limit=1).actions) == 1
    # Long before the shop's history ends nothing of today is due.
    early = clients.nba(cid, limit=10, as_of="2025-01-01")
    assert all(_ts(a.due_at) < _ts("2025-01-09T00:00:00+00:00") for a in early.actions)


def test_next_best_actions_errors(clients: Clients) -> None:
    for cid, limit, as_of, code in (
        ("C999999", 0, "", grpc.StatusCode.NOT_FOUND),
        ("", 0, "", grpc.StatusCode.INVALID_ARGUMENT),
        ("C000001", 500, "", grpc.StatusCode.INVALID_ARGUMENT),
        ("C000001", 0, "next tuesday", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as err:
            clients.nba(cid, limit, as_of)
        assert err.value.code() == code, (cid, limit, as_of)


def test_a_pending_handoff_suppresses_the_customers_nudges(clients: Clients) -> None:
    cid = next(f"C{i:06d}" for i in range(1, 200)
               if any(a.channel for a in clients.nba(f"C{i:06d}", limit=10).actions))
    call = clients.support.Respond(support_pb2.RespondRequest(
        text="I want to speak to a human agent right now", customer_id=cid), timeout=60)
    finals = [ev.final for ev in call if ev.HasField("final")]
    assert len(finals) == 1 and finals[0].route == "human"
    after = clients.nba(cid, limit=10).actions
    assert after and all(not a.channel for a in after)
    assert all("a handoff to a person is pending" in a.reason for a in after)


def test_scan_streams_due_actions_with_counts(clients: Clients) -> None:
    actions, trailers = clients.scan()
    assert len(actions) > 100
    assert all(a.channel and a.kind in KINDS for a in actions)
    assert all(_ts(a.due_at) < _ts(SHOP_NOW) for a in actions)
    assert len({a.customer_id for a in actions}) > 100
    assert int(trailers["actions-sent"]) == len(actions)
    for reason in ("open-complaint", "pending-handoff", "open-refund", "pending-approval",
                   "marketing-opt-out", "frequency-cap"):
        assert int(trailers[f"suppressed-{reason}"]) >= 0
    assert int(trailers["suppressed-open-refund"]) > 0  # the demo shop has open refunds


def test_scan_filters(clients: Clients) -> None:
    replenish, _ = clients.scan(kinds=["replenish", "warranty_expiry"])
    assert replenish and {a.kind for a in replenish} <= {"replenish", "warranty_expiry"}
    seven, trailers = clients.scan(limit=7)
    assert len(seven) == 7 and trailers["actions-sent"] == "7"
    early, _ = clients.scan(due_before="2026-11-01T00:00:00Z", kinds=["follow_up"])
    assert early and all(_ts(a.due_at) < _ts("2026-11-01T00:00:00+00:00") for a in early)
    assert all(a.kind == "follow_up" for a in early)


def test_scan_bad_requests(clients: Clients) -> None:
    for req in (admin_pb2.ScanActionsRequest(kinds=["newsletter"]),
                admin_pb2.ScanActionsRequest(due_before="2026-13-45"),
                admin_pb2.ScanActionsRequest(limit=-1)):
        with pytest.raises(grpc.RpcError) as err:
            list(clients.admin.ScanActions(req, timeout=30))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_scan_stops_when_the_client_cancels(clients: Clients) -> None:
    call = clients.admin.ScanActions(admin_pb2.ScanActionsRequest(), timeout=120)
    first = next(call)
    assert first.kind in KINDS
    call.cancel()
    service = clients.srv.app.retention  # type: ignore[union-attr]
    report = clients.srv.call(service.wait_for_scan(lambda s: s.cancelled), timeout=60)
    assert not report.finished
    assert report.customers_scanned < report.customers_total
