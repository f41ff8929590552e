"""Out-of-scope calibration from held-out rows: temperature scaling, the threshold, the curve.

The deployment case has no out-of-scope examples, so the head is calibrated on in-scope
rows it never saw (held-out folds of the training file): a temperature ``T`` minimising
their negative log-likelihood (Guo et al. 2017) makes ``max(probabilities)`` mean "how
likely the intent is right", and the threshold is the quantile of those held-out
max-probabilities that rejects the target share of in-scope messages. ``T`` is folded
into the head's last layer (logits / T), so the served graph is unchanged. When the
training file does carry out-of-scope rows, the threshold instead maximises held-out
in-scope accuracy plus out-of-scope recall.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from models.graph import Layer

FloatArray = npt.NDArray[np.float32]
_T_GRID = np.exp(np.linspace(np.log(0.2), np.log(20.0), 201))


def _log_softmax(logits: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    out: npt.NDArray[np.float64] = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return out


def scaled_probs(probs: FloatArray, temperature: float) -> FloatArray:
    """``softmax(log(probs) / T)``: the probabilities the head gives after scaling by ``T``."""
    logits = np.log(np.clip(probs.astype(np.float64), 1e-30, 1.0)) / temperature
    return np.asarray(np.exp(_log_softmax(logits)), dtype=np.float32)


def fit_temperature(probs: FloatArray, y: npt.NDArray[np.int64]) -> float:
    """The ``T`` in [0.2, 20] minimising the NLL of held-out ``probs`` for labels ``y``.

    Without a single held-out error the NLL keeps falling as ``T`` -> 0 and says nothing
    about confidence on errors, so ``T`` stays 1.
    """
    if len(y) == 0 or bool((probs.argmax(axis=1) == y).all()):
        return 1.0
    logits = np.log(np.clip(probs.astype(np.float64), 1e-30, 1.0))
    rows = np.arange(len(y))
    nll = [float(-_log_softmax(logits / t)[rows, y].mean()) for t in _T_GRID]
    return float(_T_GRID[int(np.argmin(nll))])


def scale_head(layers: Sequence[Layer], temperature: float) -> list[Layer]:
    """``layers`` with the last one divided by ``T`` (softmax(logits / T) in the graph)."""
    out = list(layers)
    weight, bias = out[-1]
    out[-1] = ((weight / temperature).astype(np.float32), (bias / temperature).astype(np.float32))
    return out


def rejection_threshold(max_prob: FloatArray, target_rejection: float) -> float:
    """The max-probability below which ``target_rejection`` of in-scope rows fall."""
    if not 0.0 <= target_rejection < 1.0:
        raise ValueError("target_rejection must be in [0, 1)")
    return float(np.quantile(max_prob.astype(np.float64), target_rejection))


def best_threshold(
    inscope_max_prob: FloatArray, inscope_correct: npt.NDArray[np.bool_], oos_max_prob: FloatArray
) -> float:
    """The threshold maximising in-scope accuracy (accepted and right) + out-of-scope recall."""
    candidates = np.unique(np.concatenate([inscope_max_prob, oos_max_prob]).astype(np.float64))
    best, best_score = 0.0, -1.0
    for t in candidates:
        score = float(((inscope_max_prob >= t) & inscope_correct).mean()) + float(
            (oos_max_prob < t).mean()
        )
        if score > best_score:
            best, best_score = float(t), score
    return best


def oos_curve(
    inscope_max_prob: FloatArray,
    inscope_correct: npt.NDArray[np.bool_],
    oos_max_prob: FloatArray,
    points: int = 41,
) -> list[dict[str, float]]:
    """In-scope accuracy vs out-of-scope recall over thresholds from 0 to 1.

    In-scope accuracy counts a row right only when it is accepted and correctly
    classified, the way a rejected in-scope message costs a handoff in serving.
    """
    curve = []
    for t in np.linspace(0.0, 1.0, points):
        accepted = inscope_max_prob >= t
        curve.append(
            {
                "threshold": round(float(t), 4),
                "inscope_accuracy": float((accepted & inscope_correct).mean())
                if len(accepted)
                else 0.0,
                "inscope_rejected": float(1.0 - accepted.mean()) if len(accepted) else 0.0,
                "oos_recall": float((oos_max_prob < t).mean()) if len(oos_max_prob) else 0.0,
            }
        )
    return curve
