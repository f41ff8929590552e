"""Respond with the ONNX causal LM as the generator: a tiny GPT-2 exported with optimum
(random weights, so the words are noise) streams through the same guard and record."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from tests.functional.harness import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("optimum", reason="optimum is needed to export the tiny LM")
    from models.tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "gpt2", arch="gpt2")


def test_respond_streams_lm_output_through_guard_and_records_it(
    server_overrides: dict, tiny_lm: Path, tmp_path: Path
) -> None:
    srv = ServerThread({
        **server_overrides,
        "records": {"path": str(tmp_path / "records.sqlite")},
        "generation": {"generator": "onnx-lm", "lm_model": str(tiny_lm),
                       "max_new_tokens": 24},
    }).start()
    try:
        with grpc.insecure_channel(srv.address) as ch:
            call = support_pb2_grpc.SupportStub(ch).Respond(
                support_pb2.RespondRequest(text="how long does shipping take?"), timeout=60)
            deltas, final = [], None
            for ev in call:
                if ev.HasField("delta"):
                    deltas.append(ev.delta.text)
                else:
                    final = ev.final
            assert final is not None and final.outcome in ("completed", "fallback")
            rec = admin_pb2_grpc.AdminStub(ch).GetDecision(
                admin_pb2.GetDecisionRequest(decision_id=final.decision_id))
        assert rec.model_versions["generator"].startswith("tiny-lm/")
        assert rec.final_text == "".join(deltas)
        assert deltas  # the LM's (guarded) tokens reached the client
    finally:
        srv.stop()
