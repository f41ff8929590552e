"""Failing dependencies over a real channel: a slow generator falls back to the
composer, a failing index answers without passages, a failing record store answers
UNAVAILABLE; each fallback is in the decision record."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread
from tests.functional.scripted import ScriptedGenerator


@pytest.fixture(scope="module")
def server(server_overrides: dict, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ServerThread]:
    base = tmp_path_factory.mktemp("degraded")
    srv = ServerThread({**server_overrides, "records": {"path": str(base / "records.sqlite")},
                        "generation": {"first_chunk_timeout_s": 0.2}}).start()
    yield srv
    srv.stop()


def _respond(srv: ServerThread, text: str) -> tuple[str, Any, Any]:
    # A visitor's general question: no order to link, so no clarifying question (which
    # the composer says as written) stands between the message and the generator.
    with srv.channel() as ch:
        events = list(support_pb2_grpc.SupportStub(ch).Respond(
            support_pb2.RespondRequest(text=text), timeout=60))
        final = events[-1].final
        rec = admin_pb2_grpc.AdminStub(ch).GetDecision(
            admin_pb2.GetDecisionRequest(decision_id=final.decision_id), timeout=30)
    return "".join(e.delta.text for e in events if e.HasField("delta")), final, rec


def test_a_slow_generator_falls_back_to_the_composer(server: ServerThread) -> None:
    assert server.app is not None
    slow = ScriptedGenerator(["never ", "seen"], delay_s=2.0)
    server.app.respond.generator = slow
    try:
        text, final, rec = _respond(server, "how long does delivery take?")
    finally:
        server.app.respond.generator = None
    assert "never" not in text and text.strip()
    assert final.outcome == "completed"
    assert list(rec.fallbacks) == ["generator_timeout"]
    assert rec.model_versions["generator"].startswith("grounded-composer/")
    assert slow.closed.wait(5)


def test_a_failing_index_answers_without_passages(server: ServerThread,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.app is not None

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("index file vanished")

    monkeypatch.setattr(server.app.knowledge, "search_filtered", broken)
    text, final, rec = _respond(server, "how long does delivery take?")
    assert text.strip() and final.outcome in ("completed", "handed_off")
    assert "index_unavailable" in rec.fallbacks
    assert len(rec.passages) == 0


def test_a_failing_record_store_is_unavailable(server: ServerThread,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert server.app is not None

    def disk_full(db: Any, items: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("server.records.store._write_batch", disk_full)
    with server.channel() as ch, pytest.raises(grpc.RpcError) as err:
        list(support_pb2_grpc.SupportStub(ch).Respond(
            support_pb2.RespondRequest(text="where is my order?", customer_id="C000002"),
            timeout=60))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "could not be stored" in (err.value.details() or "")
