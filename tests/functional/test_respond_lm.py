"""Respond with the ONNX causal LM as the generator: a tiny GPT-2 exported with optimum
(random weights, so the words are noise) streams through the same guard and record."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from server.generation.base import Chunk, Generator, Grounding
from tests.functional.harness import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("optimum", reason="optimum is needed to export the tiny LM")
    from models.tiny_lm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("lm") / "gpt2", arch="gpt2")


class Recording:
    """Wraps the server's LM generator and keeps every chunk it yields."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name, self.version = inner.name, inner.version
        self.chunks: list[str] = []

    async def stream(self, g: Grounding, cancel: threading.Event | None = None,
                     ) -> AsyncIterator[Chunk]:
        async for chunk in self.inner.stream(g, cancel):
            self.chunks.append(chunk.text)
            yield chunk


def test_respond_streams_lm_output_through_guard_and_records_it(
    server_overrides: dict, tiny_lm: Path, tmp_path: Path
) -> None:
    srv = ServerThread({
        **server_overrides,
        "records": {"path": str(tmp_path / "records.sqlite")},
        "generation": {"generator": "onnx-lm", "lm_model": str(tiny_lm),
                       "max_new_tokens": 24, "temperature": 0.0},
    }).start()
    try:
        assert srv.app is not None and srv.app.respond.generator is not None
        recording = Recording(srv.app.respond.generator)
        srv.app.respond.generator = recording
        with grpc.insecure_channel(srv.address) as ch:
            call = support_pb2_grpc.SupportStub(ch).Respond(
                support_pb2.RespondRequest(text="how long does shipping take?"), timeout=60)
            deltas, final = [], None
            for ev in call:
                if ev.HasField("delta"):
                    deltas.append(ev.delta.text)
                else:
                    final = ev.final
            assert final is not None
            rec = admin_pb2_grpc.AdminStub(ch).GetDecision(
                admin_pb2.GetDecisionRequest(decision_id=final.decision_id))
        assert rec.model_versions["generator"].startswith("tiny-lm/")
        # The LM's own tokens, not a fallback: the guard passed them all, unchanged.
        assert final.outcome == "completed" and not rec.violations
        lm_text = "".join(recording.chunks)
        assert len(recording.chunks) >= 2 and lm_text.strip()
        assert "".join(deltas) == lm_text == rec.final_text
        assert "A member of our team will follow up" not in lm_text
    finally:
        srv.stop()
