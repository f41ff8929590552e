"""The classifier graph's `oos_score` output (models/graph.py `append_oos_score`) against
numpy references on random inputs, for every kind the build can serve."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from models.graph import GRAPH_OOS_SCORES, append_head, append_oos_score
from models.head import predict_proba
from server.errors import ModelBuildError


def _identity_embedder(dim: int, opset: int) -> onnx.ModelProto:
    """A graph whose `embedding` output is its input: the head sees chosen vectors."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["embedding"])],
        "embedder",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch_size", dim])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch_size", dim])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("opset", [13, 18])  # ReduceMax axes: attribute, then input
@pytest.mark.parametrize("kind", GRAPH_OOS_SCORES)
def test_graph_oos_score_matches_numpy(kind: str, opset: int) -> None:
    rng = np.random.default_rng(opset)
    dim, n_intents = 12, 5
    layers = [
        (rng.normal(size=(7, dim)).astype(np.float32), rng.normal(size=7).astype(np.float32)),
        (rng.normal(size=(n_intents, 7)).astype(np.float32),
         rng.normal(size=n_intents).astype(np.float32)),
    ]  # fmt: skip
    centroids = _unit_rows(rng, n_intents, dim).T.copy()
    model = append_oos_score(append_head(_identity_embedder(dim, opset), layers), kind, centroids)
    assert [o.name for o in model.graph.output] == ["embedding", "probabilities", "oos_score"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = _unit_rows(rng, 9, dim)
    probs, score = session.run(["probabilities", "oos_score"], {"x": x})
    assert score.shape == (9,) and score.dtype == np.float32
    want_probs = predict_proba(layers, x)
    np.testing.assert_allclose(probs, want_probs, atol=1e-6)
    if kind == "max_prob":
        want = want_probs.max(axis=1)
    elif kind == "margin":
        top = np.sort(want_probs, axis=1)
        want = top[:, -1] - top[:, -2]
    else:
        want = np.array([max(float(row @ c) for c in centroids.T) for row in x])
    np.testing.assert_allclose(score, want, atol=1e-6)


def test_graph_refuses_unknown_kind_and_missing_centroids() -> None:
    layers = [(np.eye(3, dtype=np.float32), np.zeros(3, np.float32))]
    model = append_head(_identity_embedder(3, 18), layers)
    with pytest.raises(ModelBuildError, match="not one of"):
        append_oos_score(model, "mahalanobis")
    with pytest.raises(ModelBuildError, match="needs centroids"):
        append_oos_score(model, "centroid_cosine")
    with pytest.raises(ModelBuildError, match="already has"):
        append_oos_score(append_oos_score(model, "max_prob"), "margin")
