"""The Open Inference Protocol v2 on our port: the real tritonclient (in a subprocess),
and malformed tensors answered INVALID_ARGUMENT through our own generated stub."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from aftercare.inference.v2 import grpc_service_pb2 as pb
from aftercare.inference.v2 import grpc_service_pb2_grpc as pb_grpc
from aftercare.v1 import support_pb2, support_pb2_grpc
from server.api.oip_tensors import join_bytes
from server.inference.encoder import has_oos_score
from tests.functional.harness import ServerThread

TEXTS = ["where is my order A10023?", "I want to return these shoes",
         "can I talk to a real person"]


@pytest.fixture()
def channel(lifecycle_server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(lifecycle_server.address) as ch:
        yield ch


@pytest.mark.skipif(importlib.util.find_spec("tritonclient") is None,
                    reason="tritonclient is not installed (pip install tritonclient packaging)")
def test_tritonclient_works_unchanged(lifecycle_server: ServerThread,
                                      channel: grpc.Channel) -> None:
    script = Path(__file__).with_name("oip_client.py")
    done = subprocess.run([sys.executable, str(script), lifecycle_server.address, *TEXTS],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout)
    assert got["live"] and got["ready"] and got["classifier_ready"]
    assert not got["unknown_ready"]
    meta = got["metadata"]["intent-classifier"]
    assert meta["inputs"] == [{"name": "TEXT", "datatype": "BYTES", "shape": ["-1"]}]
    labels = got["labels"]
    # OOS_SCORE only for a version built with the `oos_score` graph output.
    served = lifecycle_server.app.registry.get("classifier")  # type: ignore[union-attr]
    extra = ["OOS_SCORE"] if has_oos_score(served.manifest) else []
    assert [o["name"] for o in meta["outputs"]] == ["PROBABILITIES", "EMBEDDING", "INTENT",
                                                    *extra]
    assert meta["outputs"][0]["shape"] == ["-1", str(len(labels))]
    assert got["metadata"]["minilm-embedder"]["outputs"] == [
        {"name": "EMBEDDING", "datatype": "FP32", "shape": ["-1", "384"]}]

    clf = got["intent-classifier"]
    probs = np.array(clf["PROBABILITIES"])
    assert probs.shape == (3, len(labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert clf["INTENT"] == [labels[i] for i in probs.argmax(axis=1)]
    support = support_pb2_grpc.SupportStub(channel)
    for text, intent in zip(TEXTS, clf["INTENT"], strict=True):
        ours = support.Classify(support_pb2.ClassifyRequest(text=text), timeout=30)
        assert ours.intents[0].name == intent
    embed = support.Embed(support_pb2.EmbedRequest(texts=TEXTS), timeout=30)
    ours = np.array([e.values for e in embed.embeddings])
    theirs = np.array(got["minilm-embedder"]["EMBEDDING"])
    assert theirs.shape == (3, 384)
    # Dynamic int8 quantizes with one scale per batch: batch-mates nudge a vector.
    assert (np.sum(ours * theirs, axis=1) >= 0.99).all()


def _infer(channel: grpc.Channel, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    return pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)


def _text_input(n: int, datatype: str = "BYTES", name: str = "TEXT"
                ) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[n])


def test_typed_bytes_contents_get_typed_answers(channel: grpc.Channel,
                                                lifecycle_server: ServerThread) -> None:
    tensor = _text_input(2)
    tensor.contents.bytes_contents.extend([b"where is my parcel", b"cancel my order"])
    before = lifecycle_server.app.registry.get("classifier").batcher.stats.items  # type: ignore[union-attr]
    resp = _infer(channel, pb.ModelInferRequest(
        model_name="intent-classifier", inputs=[tensor], id="req-7",
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="INTENT")]))
    assert resp.id == "req-7" and not resp.raw_output_contents
    assert [o.name for o in resp.outputs] == ["INTENT"]
    assert list(resp.outputs[0].shape) == [2] and len(resp.outputs[0].contents.bytes_contents) == 2
    # The same batcher as Classify: its item count moved by the two texts.
    after = lifecycle_server.app.registry.get("classifier").batcher.stats.items  # type: ignore[union-attr]
    assert after - before >= 2


def test_raw_answers_for_raw_requests(channel: grpc.Channel) -> None:
    resp = _infer(channel, pb.ModelInferRequest(
        model_name="minilm-embedder", inputs=[_text_input(1)],
        raw_input_contents=[join_bytes([b"hello there"])]))
    assert [o.name for o in resp.outputs] == ["EMBEDDING"]
    vector = np.frombuffer(resp.raw_output_contents[0], dtype="<f4")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3


@pytest.mark.parametrize(("inputs", "raw", "message"), [
    ([_text_input(1)], [b"\x05\x00\x00\x00abc"], "runs past the end"),
    ([_text_input(1)], [b"\x01\x00"], "too few for a length prefix"),
    ([_text_input(2)], [join_bytes([b"one"])], "has 1 elements"),
    ([_text_input(1, name="IMAGE")], [join_bytes([b"x"])], "unknown input"),
    ([_text_input(1, datatype="FP32")], [join_bytes([b"x"])], "must be BYTES"),
    ([_text_input(1)], [], "has 0 elements"),
    ([_text_input(1)], [join_bytes([b"\xff\xfe"])], "not UTF-8"),
    ([], [], "TEXT is missing"),
])
def test_malformed_tensors_are_invalid_argument(channel: grpc.Channel, inputs: list,
                                                raw: list[bytes], message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _infer(channel, pb.ModelInferRequest(model_name="intent-classifier", inputs=inputs,
                                             raw_input_contents=raw))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_unknown_output_and_model(channel: grpc.Channel) -> None:
    tensor = _text_input(1)
    tensor.contents.bytes_contents.append(b"hi")
    with pytest.raises(grpc.RpcError) as err:
        _infer(channel, pb.ModelInferRequest(
            model_name="minilm-embedder", inputs=[tensor],
            outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="INTENT")]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        _infer(channel, pb.ModelInferRequest(model_name="nope", inputs=[tensor]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_repository_calls_map_onto_the_lifecycle(channel: grpc.Channel) -> None:
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    version = pb.ModelRepositoryParameter(int64_param=2)
    stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(
        model_name="intent-classifier", parameters={"version": version}), timeout=60)
    index = stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=10)
    assert ("intent-classifier", "2", "READY") in {(m.name, m.version, m.state)
                                                   for m in index.models}
    assert stub.ModelReady(pb.ModelReadyRequest(name="intent-classifier", version="2")).ready
    back = pb.ModelRepositoryParameter(string_param="1")
    stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(
        model_name="intent-classifier", parameters={"version": back}), timeout=60)
    stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(
        model_name="intent-classifier", parameters={"version": version}), timeout=10)
    full = stub.RepositoryIndex(pb.RepositoryIndexRequest(), timeout=10)
    states = {(m.version, m.state) for m in full.models if m.name == "intent-classifier"}
    assert ("1", "READY") in states and ("2", "READY") not in states
    failed = [m for m in full.models if m.state == "UNAVAILABLE" and m.reason]
    assert all(m.name == "intent-classifier" for m in failed)
