"""ONNX graph surgery: sentence pooling and a classifier head appended to an encoder.

The encoder export ends at ``last_hidden_state`` [batch, seq, hidden]. ``append_pooling``
adds attention-mask weighted mean pooling and L2 normalisation (the sentence-transformers
recipe: mask sum clamped at 1e-9, norm clamped at 1e-12) and makes ``embedding`` the
output. ``append_head`` adds dense layers (ReLU between them) and a softmax, producing
``probabilities`` next to ``embedding``. ``append_oos_score`` adds ``oos_score``
[batch], higher = more in scope: the top probability, the margin of the two top ones, or
the cosine of the unit embedding to the nearest intent centroid. All work on opset >= 13
(axes as inputs; ReduceMax takes them as an input from opset 18).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from server.errors import ModelBuildError

HIDDEN_OUTPUT = "last_hidden_state"
EMBEDDING_OUTPUT = "embedding"
PROBABILITIES_OUTPUT = "probabilities"
OOS_SCORE_OUTPUT = "oos_score"
# Out-of-scope scores the served graph computes (models/oos_scores.py compares more).
GRAPH_OOS_SCORES = ("max_prob", "margin", "centroid_cosine")
MASK_INPUT = "attention_mask"
BATCH_DIM = "batch_size"

Layer = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]


def model_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset version of ``model``."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise ModelBuildError("model has no default-domain opset")


def _output_info(name: str, width: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH_DIM, width])


def _const(graph: onnx.GraphProto, name: str, value: npt.NDArray[np.generic]) -> str:
    graph.initializer.append(numpy_helper.from_array(value, name))
    return name


def append_pooling(model: onnx.ModelProto, hidden_size: int) -> onnx.ModelProto:
    """A copy of the encoder ``model`` whose only output is the unit-norm ``embedding``."""
    if model_opset(model) < 13:
        raise ModelBuildError("pooling needs opset >= 13")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if HIDDEN_OUTPUT not in {o.name for o in graph.output}:
        raise ModelBuildError(f"encoder graph has no {HIDDEN_OUTPUT} output")
    if MASK_INPUT not in {i.name for i in graph.input}:
        raise ModelBuildError(f"encoder graph has no {MASK_INPUT} input")
    axis_seq = _const(graph, "pool/axis_seq", np.array([1], dtype=np.int64))
    axis_last = _const(graph, "pool/axis_last", np.array([-1], dtype=np.int64))
    mask_floor = _const(graph, "pool/mask_floor", np.array(1e-9, dtype=np.float32))
    norm_floor = _const(graph, "pool/norm_floor", np.array(1e-12, dtype=np.float32))
    graph.node.extend(
        [
            helper.make_node(
                "Cast", [MASK_INPUT], ["pool/mask_f"], "pool/cast", to=TensorProto.FLOAT
            ),
            helper.make_node("Unsqueeze", ["pool/mask_f", axis_last], ["pool/mask3"], "pool/unsq"),
            helper.make_node("Mul", [HIDDEN_OUTPUT, "pool/mask3"], ["pool/masked"], "pool/mul"),
            helper.make_node(
                "ReduceSum", ["pool/masked", axis_seq], ["pool/sum"], "pool/sum", keepdims=0
            ),
            helper.make_node(
                "ReduceSum", ["pool/mask3", axis_seq], ["pool/count"], "pool/count", keepdims=0
            ),
            helper.make_node("Max", ["pool/count", mask_floor], ["pool/count_c"], "pool/clamp"),
            helper.make_node("Div", ["pool/sum", "pool/count_c"], ["pool/mean"], "pool/mean"),
            helper.make_node("Mul", ["pool/mean", "pool/mean"], ["pool/sq"], "pool/sq"),
            helper.make_node(
                "ReduceSum", ["pool/sq", axis_last], ["pool/sumsq"], "pool/sumsq", keepdims=1
            ),
            helper.make_node("Sqrt", ["pool/sumsq"], ["pool/norm"], "pool/sqrt"),
            helper.make_node("Max", ["pool/norm", norm_floor], ["pool/norm_c"], "pool/norm_clamp"),
            helper.make_node(
                "Div", ["pool/mean", "pool/norm_c"], [EMBEDDING_OUTPUT], "pool/normalize"
            ),
        ]
    )
    del graph.output[:]
    graph.output.append(_output_info(EMBEDDING_OUTPUT, hidden_size))
    onnx.checker.check_model(out)
    return out


def append_head(model: onnx.ModelProto, layers: Sequence[Layer]) -> onnx.ModelProto:
    """A copy of the embedder ``model`` with dense layers + softmax -> ``probabilities``.

    Each layer is (weight [out, in], bias [out]); ReLU sits between layers, not after
    the last. The head stays float32: it is tiny, and quantizing it would shift the
    probabilities the out-of-scope threshold was calibrated on.
    """
    if not layers:
        raise ModelBuildError("head has no layers")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    outputs = {o.name: o for o in graph.output}
    if EMBEDDING_OUTPUT not in outputs:
        raise ModelBuildError(f"embedder graph has no {EMBEDDING_OUTPUT} output")
    current = EMBEDDING_OUTPUT
    for index, (weight, bias) in enumerate(layers):
        if weight.ndim != 2 or bias.shape != (weight.shape[0],):
            raise ModelBuildError(f"head layer {index}: weight {weight.shape} / bias {bias.shape}")
        w_name = _const(graph, f"head/w{index}", weight.astype(np.float32))
        b_name = _const(graph, f"head/b{index}", bias.astype(np.float32))
        dense = f"head/dense{index}"
        graph.node.append(
            helper.make_node("Gemm", [current, w_name, b_name], [dense], dense, transB=1)
        )
        current = dense
        if index < len(layers) - 1:
            graph.node.append(helper.make_node("Relu", [dense], [f"{dense}_relu"], f"{dense}/relu"))
            current = f"{dense}_relu"
    graph.node.append(
        helper.make_node("Softmax", [current], [PROBABILITIES_OUTPUT], "head/softmax", axis=-1)
    )
    graph.output.append(_output_info(PROBABILITIES_OUTPUT, int(layers[-1][0].shape[0])))
    onnx.checker.check_model(out)
    return out


def _reduce_max_last(graph: onnx.GraphProto, opset: int, value: str, out: str) -> onnx.NodeProto:
    """``max(value, axis=-1)`` without keeping the axis."""
    if opset >= 18:
        axes = _const(graph, f"{out}/axes", np.array([-1], dtype=np.int64))
        return helper.make_node("ReduceMax", [value, axes], [out], f"{out}/max", keepdims=0)
    return helper.make_node("ReduceMax", [value], [out], f"{out}/max", axes=[-1], keepdims=0)


def append_oos_score(
    model: onnx.ModelProto, kind: str, centroids: npt.NDArray[np.float32] | None = None
) -> onnx.ModelProto:
    """A copy of the classifier ``model`` with the ``oos_score`` output [batch].

    ``max_prob``: max(probabilities); ``margin``: top minus second probability;
    ``centroid_cosine``: max over intents of ``embedding @ centroids`` ([dim, n_intents],
    unit columns; the embedding is already unit-norm).
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    outputs = {o.name for o in graph.output}
    if PROBABILITIES_OUTPUT not in outputs or EMBEDDING_OUTPUT not in outputs:
        raise ModelBuildError("oos_score needs a classifier graph (embedding + probabilities)")
    if OOS_SCORE_OUTPUT in outputs:
        raise ModelBuildError(f"the graph already has an {OOS_SCORE_OUTPUT} output")
    opset = model_opset(out)
    if kind == "max_prob":
        graph.node.append(
            _reduce_max_last(graph, opset, PROBABILITIES_OUTPUT, OOS_SCORE_OUTPUT)
        )
    elif kind == "margin":
        k = _const(graph, "oos/k", np.array([2], dtype=np.int64))
        first = _const(graph, "oos/first", np.array(0, dtype=np.int64))
        second = _const(graph, "oos/second", np.array(1, dtype=np.int64))
        graph.node.extend(
            [
                helper.make_node(
                    "TopK", [PROBABILITIES_OUTPUT, k], ["oos/top", "oos/top_i"], "oos/topk"
                ),
                helper.make_node("Gather", ["oos/top", first], ["oos/p1"], "oos/p1", axis=1),
                helper.make_node("Gather", ["oos/top", second], ["oos/p2"], "oos/p2", axis=1),
                helper.make_node("Sub", ["oos/p1", "oos/p2"], [OOS_SCORE_OUTPUT], "oos/margin"),
            ]
        )
    elif kind == "centroid_cosine":
        if centroids is None or centroids.ndim != 2:
            raise ModelBuildError("centroid_cosine needs centroids [dim, n_intents]")
        c_name = _const(graph, "oos/centroids", centroids.astype(np.float32))
        graph.node.extend(
            [
                helper.make_node("MatMul", [EMBEDDING_OUTPUT, c_name], ["oos/cos"], "oos/cos"),
                _reduce_max_last(graph, opset, "oos/cos", OOS_SCORE_OUTPUT),
            ]
        )
    else:
        raise ModelBuildError(f"oos_score {kind!r} is not one of {GRAPH_OOS_SCORES}")
    graph.output.append(
        helper.make_tensor_value_info(OOS_SCORE_OUTPUT, TensorProto.FLOAT, [BATCH_DIM])
    )
    onnx.checker.check_model(out)
    return out
