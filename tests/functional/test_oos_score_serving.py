"""Serving the classifier's `oos_score` output over real channels (server on port 0).

A throwaway repository holds two versions made from the default classifier graph:
v1 without `oos_score` (as built before the output existed: out of scope by
max(probabilities)) and v2 with a `centroid_cosine` score whose centroids are the demo
training intents' mean embeddings. Each version's threshold is chosen so that the two
rules disagree on some probe text: the answers show which score the server used.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest

from aftercare.inference.v2 import grpc_service_pb2 as oip
from aftercare.inference.v2 import grpc_service_pb2_grpc as oip_grpc
from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from models.graph import append_oos_score
from models.intent_data import default_intents_path, load_intents
from models.repository import ModelRepository, sha256_file
from models.runtime import OnnxTextModel
from tests.functional.harness import ServerThread

CLASSIFIER, EMBEDDER = "intent-classifier", "minilm-embedder"
TEXTS = [
    "where is my order",
    "i want my money back for the broken kettle",
    "cancel my order please",
    "what is the capital of france",
    "tell me a joke about penguins",
    "asdf qwerty zxcv",
    "the weather is nice today",
    "can i change my delivery address",
]


def _disagreeing_threshold(score: np.ndarray, other: np.ndarray) -> float:
    """A threshold splitting `score` into in and out of scope that `other` splits
    differently, so an answer tells which of the two was compared."""
    ordered = np.sort(score)
    # Midway between two scores well apart: the server's batching moves a score by ~1e-6.
    for low, high in itertools.pairwise(ordered):
        t = (low + high) / 2
        if high - low > 1e-3 and ((score < t) != (other < t)).any():
            return float(t)
    raise AssertionError(f"no threshold tells {score} from {other}")


def _version(root: Path, src: Path, version: int, model: onnx.ModelProto, manifest: dict) -> None:
    target = root / CLASSIFIER / str(version)
    target.mkdir(parents=True)
    onnx.save(model, str(target / "model.onnx"))
    (target / "tokenizer.json").symlink_to((src / "tokenizer.json").resolve())
    manifest = {**manifest, "version": version}
    manifest["files"] = {
        "model.onnx": sha256_file(target / "model.onnx"),
        "tokenizer.json": sha256_file(target / "tokenizer.json"),
    }
    (target / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def repo(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    source = ModelRepository(model_repository)
    clf, emb = source.latest(CLASSIFIER), source.latest(EMBEDDER)
    root = tmp_path_factory.mktemp("oos") / "repo"
    (root / EMBEDDER).mkdir(parents=True)
    (root / EMBEDDER / "1").symlink_to(emb.path.resolve())
    # v1: the graph without `oos_score` (its output, nodes and constants), whatever
    # the default build serves now.
    old = onnx.load(str(clf.model_path))
    for field in (old.graph.output, old.graph.node, old.graph.initializer):
        kept = [item for item in field if not item.name.startswith("oos")]
        del field[:]
        field.extend(kept)
    manifest = dict(clf.manifest)
    manifest["outputs"] = [o for o in manifest["outputs"] if o["name"] != "oos_score"]
    manifest["oos"] = {"rule": "out_of_scope when max(probabilities) < oos_threshold"}
    # v2: the same graph plus the centroid cosine of the demo intents.
    data = load_intents(default_intents_path())
    tmp = root.parent / "v1.onnx"
    onnx.save(old, str(tmp))
    local = OnnxTextModel(tmp, clf.tokenizer_path, clf.max_length)
    x = local.run(list(data.texts))["embedding"]
    labels = list(manifest["labels"])
    y = np.array([labels.index(label) for label in data.labels], dtype=np.int64)
    means = np.stack([x[y == k].mean(axis=0) for k in range(len(labels))])
    centroids = np.ascontiguousarray((means / np.linalg.norm(means, axis=1, keepdims=True)).T)
    new = append_oos_score(old, "centroid_cosine", centroids)
    # One text per run, as each Classify call is its own batch: dynamic int8
    # quantization scales activations per batch, so batch-mates move a score by ~1e-2.
    probe = [local.run_batch([text]) for text in TEXTS]
    max_prob = np.array([p["probabilities"].max() for p in probe])
    cosine = np.array([(p["embedding"] @ centroids).max() for p in probe])
    t1, t2 = _disagreeing_threshold(max_prob, cosine), _disagreeing_threshold(cosine, max_prob)
    _version(root, clf.path, 1, old, {**manifest, "oos_threshold": t1})
    _version(root, clf.path, 2, new, {
        **manifest,
        "outputs": [*manifest["outputs"],
                    {"name": "oos_score", "dtype": "float32", "shape": ["batch_size"]}],
        "oos_threshold": t2,
        "oos": {"rule": "out_of_scope when oos_score < oos_threshold",
                "score": "centroid_cosine"},
    })  # fmt: skip
    return {"root": root, "t1": t1, "t2": t2, "max_prob": max_prob, "cosine": cosine}


@pytest.fixture(scope="module")
def server(repo: dict, server_overrides: dict,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    models = {**server_overrides["models"], "repository": str(repo["root"]),
              "classifier_version": 2, "embedder_version": 1}
    records = {"path": str(tmp_path_factory.mktemp("oos-rec") / "records.sqlite")}
    srv = ServerThread({**server_overrides, "models": models, "records": records}).start()
    yield srv
    srv.stop()


def _classify(channel: grpc.Channel, model: str = "") -> list[support_pb2.ClassifyResponse]:
    stub = support_pb2_grpc.SupportStub(channel)
    return [stub.Classify(support_pb2.ClassifyRequest(text=t, model=model), timeout=30)
            for t in TEXTS]


def test_served_version_flags_out_of_scope_by_its_oos_score(server: ServerThread,
                                                            repo: dict) -> None:
    with server.channel() as channel:
        answers = _classify(channel)
    assert {a.model_version for a in answers} == {f"{CLASSIFIER}/2"}
    got = [a.out_of_scope for a in answers]
    assert got == (repo["cosine"] < repo["t2"]).tolist()
    assert got != (repo["max_prob"] < repo["t2"]).tolist()  # not max-prob's answer


def test_older_version_without_oos_score_serves_by_max_probability(server: ServerThread,
                                                                   repo: dict) -> None:
    with server.channel() as channel:
        admin_pb2_grpc.AdminStub(channel).LoadModel(
            admin_pb2.LoadModelRequest(name=CLASSIFIER, version=1), timeout=120)
        answers = _classify(channel, f"{CLASSIFIER}/1")
    assert {a.model_version for a in answers} == {f"{CLASSIFIER}/1"}
    got = [a.out_of_scope for a in answers]
    assert got == (repo["max_prob"] < repo["t1"]).tolist()
    assert got != (repo["cosine"] < repo["t1"]).tolist()


def test_open_inference_protocol_offers_oos_score(server: ServerThread, repo: dict) -> None:
    with server.channel() as channel:
        stub = oip_grpc.GRPCInferenceServiceStub(channel)
        meta = stub.ModelMetadata(oip.ModelMetadataRequest(name=CLASSIFIER), timeout=30)
        assert [o.name for o in meta.outputs] == [
            "PROBABILITIES", "EMBEDDING", "INTENT", "OOS_SCORE"]
        scores = []
        for text in TEXTS:  # one per request: the local reference ran them one by one
            tensor = oip.ModelInferRequest.InferInputTensor(name="TEXT", datatype="BYTES",
                                                            shape=[1])
            tensor.contents.bytes_contents.append(text.encode())
            resp = stub.ModelInfer(oip.ModelInferRequest(
                model_name=CLASSIFIER, inputs=[tensor],
                outputs=[oip.ModelInferRequest.InferRequestedOutputTensor(name="OOS_SCORE")]),
                timeout=30)
            assert [o.name for o in resp.outputs] == ["OOS_SCORE"]
            assert list(resp.outputs[0].shape) == [1]
            scores.extend(resp.outputs[0].contents.fp32_contents)
    np.testing.assert_allclose(scores, repo["cosine"], atol=1e-4)
