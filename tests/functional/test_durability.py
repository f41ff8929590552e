"""Kill test: `kill -9` the server while Respond and Feedback traffic runs. After a
restart, every decision whose Final event reached a client is returned by GetDecision,
every acknowledged feedback is stored, and a SQLite file passes integrity_check. On both
backends: SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.records.sql import connect_sync
from tests.functional.serverproc import ServerProcess, write_config

MESSAGES = ["where is my order?", "I want to return my shoes", "do you ship to Canada?",
            "my discount code doesn't work", "can I change my delivery address?"]


@pytest.fixture()
def config(tmp_path: Path, server_overrides: dict, records_url: str) -> Path:
    return write_config(tmp_path, server_overrides, records_url)


@pytest.mark.slow
def test_kill_9_loses_no_acknowledged_decision(config: Path, tmp_path: Path,
                                              records_url: str) -> None:
    srv = ServerProcess(config, tmp_path / "server.log")
    finals: list[str] = []
    feedback_acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def client(worker: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            stub = support_pb2_grpc.SupportStub(ch)
            i = 0
            while not stop.is_set() and i < 400:  # bounded: the kill comes much sooner
                i += 1
                req = support_pb2.RespondRequest(
                    text=MESSAGES[(worker + i) % len(MESSAGES)],
                    customer_id=f"C{1 + (worker * 37 + i) % 150:06d}",
                    conversation_id=f"kill-{worker}-{i}")
                try:
                    for ev in stub.Respond(req, timeout=30):
                        if ev.HasField("final"):
                            with lock:
                                finals.append(ev.final.decision_id)
                                if len(finals) >= 60:
                                    enough.set()
                            stub.Feedback(support_pb2.FeedbackRequest(
                                decision_id=ev.final.decision_id, csat=4), timeout=30)
                            with lock:
                                feedback_acked.append(ev.final.decision_id)
                except grpc.RpcError:
                    return  # the server is gone

    threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    assert enough.wait(240), "no traffic got through"
    srv.kill()  # mid-traffic: calls are in flight on every client
    stop.set()
    for t in threads:
        t.join(60)
    with lock:
        acknowledged, fed_back = list(finals), list(feedback_acked)
    assert len(acknowledged) >= 60

    _integrity_check(records_url)

    srv = ServerProcess(config, tmp_path / "server.log")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            admin = admin_pb2_grpc.AdminStub(ch)
            missing = []
            for decision_id in acknowledged:
                try:
                    rec = admin.GetDecision(admin_pb2.GetDecisionRequest(
                        decision_id=decision_id), timeout=30)
                    assert rec.decision_id == decision_id
                except grpc.RpcError as err:
                    missing.append((decision_id, err.code()))
        assert missing == []
    finally:
        srv.stop()
    _integrity_check(records_url)
    with connect_sync(records_url, "") as db:
        stored = {r[0] for r in db.execute("SELECT decision_id FROM feedback")}
    assert set(fed_back) <= stored


def _integrity_check(records_url: str) -> None:
    """SQLite's file check; PostgreSQL's own crash recovery has nothing to show here."""
    with connect_sync(records_url, "") as db:
        if db.dialect == "sqlite":
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
