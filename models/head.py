"""The intent head: training on frozen sentence embeddings, cross-validation, and the
out-of-scope threshold calibrated from held-out folds of the training data alone.

Features are standardised with the training mean/std and the standardisation is folded
into the first dense layer, so the exported head takes the raw embedding. Two kinds:
``linear`` (multinomial logistic regression, full-batch L-BFGS with an L2 penalty) and
``mlp`` (one hidden ReLU layer, full-batch Adam with weight decay).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from models.graph import Layer
from models.metrics import accuracy, macro_f1, stratified_folds
from server.errors import DataError

FloatArray = npt.NDArray[np.float32]
HEAD_KINDS = ("linear", "mlp")


@dataclass(frozen=True, slots=True)
class HeadConfig:
    """Training settings of the head."""

    kind: str = "linear"
    l2: float = 1e-2
    hidden: int = 256
    epochs: int = 300
    learning_rate: float = 3e-3
    max_iter: int = 300
    seed: int = 0


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Held-out figures from k-fold training on the training rows."""

    folds: int
    accuracy: float
    macro_f1: float
    heldout_max_prob: FloatArray
    # Rows scored by a head that never saw them, their probabilities and integer labels.
    heldout: npt.NDArray[np.bool_]
    heldout_probs: FloatArray
    heldout_y: npt.NDArray[np.int64]


def predict_proba(layers: Sequence[Layer], x: FloatArray) -> FloatArray:
    """Numpy forward pass matching the ONNX head (Gemm, ReLU between, softmax)."""
    h = x.astype(np.float32)
    for index, (weight, bias) in enumerate(layers):
        h = h @ weight.T + bias
        if index < len(layers) - 1:
            h = np.maximum(h, 0.0)
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float32)


def train_head(
    x: FloatArray, y: npt.NDArray[np.int64], n_labels: int, config: HeadConfig
) -> list[Layer]:
    """Fit a head on embeddings ``x`` [n, d] with integer labels ``y``; return its layers."""

    if config.kind not in HEAD_KINDS:
        raise DataError(f"unknown head kind {config.kind!r}; use one of {HEAD_KINDS}")
    with _one_thread():
        return _train_head(x, y, n_labels, config)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Heads are small dense problems: one torch thread is faster than several, and
    much faster when other processes share the cores (measured 5x on 2 busy cores)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _train_head(
    x: FloatArray, y: npt.NDArray[np.int64], n_labels: int, config: HeadConfig
) -> list[Layer]:
    import torch

    torch.manual_seed(config.seed)
    mean = x.mean(axis=0)
    std = x.std(axis=0) + 1e-6
    xt = torch.from_numpy(((x - mean) / std).astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    dim = x.shape[1]
    if config.kind == "linear":
        model: torch.nn.Module = torch.nn.Linear(dim, n_labels)
        _fit_lbfgs(model, xt, yt, config)
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(dim, config.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(config.hidden, n_labels),
        )
        _fit_adam(model, xt, yt, config)
    dense = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    layers: list[Layer] = [
        (m.weight.detach().numpy().astype(np.float32), m.bias.detach().numpy().astype(np.float32))
        for m in dense
    ]
    # Fold (x - mean) / std into the first layer: W' = W / std, b' = b - W' @ mean.
    w0, b0 = layers[0]
    w_folded = (w0 / std[None, :]).astype(np.float32)
    layers[0] = (w_folded, (b0 - w_folded @ mean).astype(np.float32))
    return layers


def _fit_lbfgs(model: object, x: object, y: object, config: HeadConfig) -> None:
    import torch

    assert isinstance(model, torch.nn.Linear)
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    optimizer = torch.optim.LBFGS(
        model.parameters(), lr=1.0, max_iter=config.max_iter, line_search_fn="strong_wolfe"
    )
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y) + config.l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)


def _fit_adam(model: object, x: object, y: object, config: HeadConfig) -> None:
    import torch

    assert isinstance(model, torch.nn.Module)
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.l2
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for _ in range(config.epochs):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    model.eval()


def cross_validate(
    x: FloatArray,
    labels: Sequence[str],
    label_names: Sequence[str],
    config: HeadConfig,
    seed: int = 0,
    extra_x: FloatArray | None = None,
    extra_sources: Sequence[int] = (),
    assignment: npt.NDArray[np.int64] | None = None,
) -> CrossValidation:
    """Stratified k-fold (k = min(5, smallest class)) held-out accuracy, macro-F1, max-prob.

    ``extra_x`` are augmented rows; row i derives from ``x[extra_sources[i]]`` and joins a
    fold's training part only when its source does, so no held-out text leaks in.
    ``assignment`` overrides the folds: row i is held out in fold ``assignment[i]``, and
    rows marked -1 are never held out (e.g. the rows a fine-tuned encoder was trained on,
    whose embeddings would flatter a head scored on them).
    """
    index = {label: i for i, label in enumerate(label_names)}
    y = np.array([index[label] for label in labels], dtype=np.int64)
    if assignment is None:
        smallest = int(np.bincount(y, minlength=len(label_names)).min())
        folds = min(5, smallest)
        if folds < 2:
            raise DataError(
                "every label needs at least 2 rows to calibrate the out-of-scope threshold"
            )
        assignment = stratified_folds(list(labels), folds, seed)
    else:
        folds = int(assignment.max()) + 1
        if folds < 1:
            raise DataError("the fold assignment holds no row out")
    sources = np.asarray(extra_sources, dtype=np.int64)
    predicted = np.full(len(y), -1, dtype=np.int64)
    max_prob = np.zeros(len(y), dtype=np.float32)
    all_probs = np.zeros((len(y), len(label_names)), dtype=np.float32)
    for fold in range(folds):
        held = assignment == fold
        train_x, train_y = x[~held], y[~held]
        if extra_x is not None and len(sources):
            keep = ~held[sources]
            train_x = np.vstack([train_x, extra_x[keep]])
            train_y = np.concatenate([train_y, y[sources[keep]]])
        layers = train_head(train_x, train_y, len(label_names), config)
        probs = predict_proba(layers, x[held])
        all_probs[held] = probs
        predicted[held] = probs.argmax(axis=1)
        max_prob[held] = probs.max(axis=1)
    scored = assignment >= 0
    truth = [label_names[i] for i in y[scored].tolist()]
    guess = [label_names[i] for i in predicted[scored].tolist()]
    return CrossValidation(
        folds=folds,
        accuracy=accuracy(truth, guess),
        macro_f1=macro_f1(truth, guess, label_names),
        heldout_max_prob=max_prob[scored],
        heldout=scored,
        heldout_probs=all_probs[scored],
        heldout_y=y[scored],
    )


def oos_threshold(heldout_max_prob: FloatArray, quantile: float) -> float:
    """The ``quantile`` of in-scope held-out max-probabilities.

    By construction about ``quantile`` of in-scope messages fall below it (and would be
    called out of scope); anything less confident than that is treated as unknown.
    """
    if not 0.0 <= quantile < 1.0:
        raise ValueError("quantile must be in [0, 1)")
    return float(np.quantile(heldout_max_prob.astype(np.float64), quantile))
