"""Out-of-scope scores compared without out-of-scope examples (a ``models eval`` report).

The served rule is ``max(probabilities) < threshold``. This module measures whether
another score of the same int8 embeddings separates unknown intents better: the margin
between the two most likely intents, the cosine to the nearest intent centroid, and the
Mahalanobis distance to the nearest intent mean under a shared, shrunk covariance (Lee
et al. 2018). The choice is made on the training file alone, by leaving groups of intents
out of it as pseudo out-of-scope (each score's threshold rejects ``rejection`` of
held-out in-scope rows, and the score that then rejects most left-out intents wins).
The test split only reports the outcome. The build serves the choice among the scores
its graph computes (models/served_oos.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.head import HeadConfig, predict_proba, train_head
from models.metrics import stratified_folds

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
SCORES = ("max_prob", "margin", "centroid_cosine", "mahalanobis")
REJECTIONS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)
SHRINKAGE = 0.05  # of the mean variance, added to the covariance's diagonal


def intent_directions(x: FloatArray, y: IntArray, n_labels: int) -> FloatArray:
    """Unit per-intent mean of ``x`` [n_labels, dim]; zero for an intent without rows."""
    sums = np.zeros((n_labels, x.shape[1]))
    np.add.at(sums, y, x.astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.asarray(np.where(norms > 0, sums / np.clip(norms, 1e-12, None), 0.0), np.float32)


def probability_score(kind: str, probs: FloatArray) -> npt.NDArray[np.float64]:
    """``max_prob`` (top probability) or ``margin`` (top minus second) per row."""
    if kind == "max_prob":
        return probs.max(axis=1).astype(np.float64)
    top = np.sort(probs, axis=1)
    return (top[:, -1] - top[:, -2]).astype(np.float64)


def cosine_score(x: FloatArray, directions: FloatArray) -> npt.NDArray[np.float64]:
    """Max cosine of unit rows ``x`` to ``directions`` (what the graph's MatMul computes)."""
    return np.asarray((x.astype(np.float64) @ directions.T.astype(np.float64)).max(axis=1))


class _Fitted:
    """A head and per-intent statistics fitted on in-scope rows; scores: higher = in scope."""

    def __init__(self, x: FloatArray, y: IntArray, n_labels: int, head: HeadConfig) -> None:
        x64 = x.astype(np.float64)
        self.layers = train_head(x, y, n_labels, head)
        counts = np.bincount(y, minlength=n_labels)
        sums = np.zeros((n_labels, x.shape[1]))
        np.add.at(sums, y, x64)
        # An intent with no fitting rows (tiny data) gets a far-away mean: never nearest.
        self.means = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 1e6)
        centred = x64 - self.means[y]
        cov = centred.T @ centred / len(x64)
        cov += SHRINKAGE * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
        self.precision = np.linalg.inv(cov)
        self.directions = intent_directions(x, y, n_labels)

    def probs(self, x: FloatArray) -> FloatArray:
        return predict_proba(self.layers, x)

    def score(self, kind: str, x: FloatArray, probs: FloatArray) -> npt.NDArray[np.float64]:
        if kind in ("max_prob", "margin"):
            return probability_score(kind, probs)
        x64 = x.astype(np.float64)
        if kind == "centroid_cosine":
            unit = x64 / np.clip(np.linalg.norm(x64, axis=1, keepdims=True), 1e-12, None)
            return cosine_score(unit, self.directions)
        if kind == "mahalanobis":
            # (x - m)' P (x - m) = x'Px - 2 m'Px + m'Pm, for all means at once.
            px = x64 @ self.precision
            quad = np.einsum("ij,ij->i", px, x64)[:, None]
            cross = px @ self.means.T
            mpm = np.einsum("ij,jk,ik->i", self.means, self.precision, self.means)[None, :]
            return np.asarray(-(quad - 2.0 * cross + mpm).min(axis=1))
        raise ValueError(f"unknown score {kind!r}; use one of {SCORES}")


def _share(mask: npt.NDArray[np.bool_]) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _recall(inscope: npt.NDArray[np.float64], oos: npt.NDArray[np.float64], q: float) -> float:
    return float((oos < np.quantile(inscope, q)).mean())


def choose_score(
    x: FloatArray,
    y: IntArray,
    n_labels: int,
    head: HeadConfig,
    seed: int,
    groups: int = 4,
    rejection: float = 0.05,
    heldout: npt.NDArray[np.bool_] | None = None,
    kinds: Sequence[str] = SCORES,
) -> dict[str, Any]:
    """Leave each of ``groups`` seeded intent groups out in turn; mean pseudo-OOS recall
    of every score at ``rejection`` of held-out in-scope rows, and the best of ``kinds``
    (the first of ``kinds`` wins a tie).

    ``heldout`` marks the rows no encoder or head trained on (default: one of 5
    stratified folds); left-out intents are scored on those rows only.
    """
    if heldout is None:
        heldout = stratified_folds([str(v) for v in y.tolist()], 5, seed) == 0
    rng = np.random.default_rng(seed)
    # At least two intents stay in scope each time.
    parts = np.array_split(rng.permutation(n_labels), min(groups, n_labels))
    recalls: dict[str, list[float]] = {kind: [] for kind in SCORES}
    for part in parts:
        left_out = np.isin(y, part)
        scored = (left_out & heldout).any() and (~left_out & heldout).any()
        if n_labels - len(part) < 2 or not scored:
            continue
        kept = np.setdiff1d(np.arange(n_labels), part)
        remap = np.full(n_labels, -1, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        fit_rows = ~left_out & ~heldout
        fitted = _Fitted(x[fit_rows], remap[y[fit_rows]], len(kept), head)
        inscope_x, oos_x = x[~left_out & heldout], x[left_out & heldout]
        inscope_p, oos_p = fitted.probs(inscope_x), fitted.probs(oos_x)
        for kind in SCORES:
            recalls[kind].append(
                _recall(
                    fitted.score(kind, inscope_x, inscope_p),
                    fitted.score(kind, oos_x, oos_p),
                    rejection,
                )
            )
    if not recalls["max_prob"]:
        return {"rule": "too few intents or held-out rows to leave any out", "chosen": kinds[0]}
    mean = {kind: float(np.mean(values)) for kind, values in recalls.items()}
    # max keeps the first of equal scores: max_prob (first by default) wins a tie.
    chosen = max(kinds, key=lambda kind: round(mean[kind], 6))
    return {
        "rule": f"mean recall of {groups} left-out intent groups at {rejection:g} held-out "
        "in-scope rejection, training file only",
        "groups_scored": len(recalls["max_prob"]),
        "pseudo_oos_recall": mean,
        "among": list(kinds),
        "chosen": chosen,
    }


def score_curves(
    x: FloatArray,
    y: IntArray,
    n_labels: int,
    head: HeadConfig,
    heldout: npt.NDArray[np.bool_],
    test_x: FloatArray,
    test_y: IntArray,
    rejections: Sequence[float] = REJECTIONS,
) -> dict[str, list[dict[str, float]]]:
    """Per score: thresholds set on the ``heldout`` training rows at each target
    rejection, applied to the test rows (``test_y`` -1 = out of scope)."""
    fitted = _Fitted(x[~heldout], y[~heldout], n_labels, head)
    held_x = x[heldout]
    held_p, test_p = fitted.probs(held_x), fitted.probs(test_x)
    inscope = test_y >= 0
    correct = inscope & (test_p.argmax(axis=1) == test_y)
    out: dict[str, list[dict[str, float]]] = {}
    for kind in SCORES:
        held_s, test_s = fitted.score(kind, held_x, held_p), fitted.score(kind, test_x, test_p)
        curve = []
        for q in rejections:
            accepted = test_s >= np.quantile(held_s, q)
            curve.append(
                {
                    "heldout_rejection": q,
                    "inscope_rejected": _share(~accepted[inscope]),
                    "inscope_accuracy": _share((accepted & correct)[inscope]),
                    "oos_recall": _share(~accepted[~inscope]),
                }
            )
        out[kind] = curve
    return out


def compare_scores(
    embed: Callable[[list[str]], FloatArray],
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    head: HeadConfig,
    seed: int,
    assignment: IntArray | None = None,
) -> dict[str, Any]:
    """The ``oos_scores`` block of ``models eval``: the training-file choice and the test
    curves. Test labels not among the training labels count as out of scope."""
    names = sorted(set(train_labels))
    index = {label: i for i, label in enumerate(names)}
    y = np.array([index[label] for label in train_labels], dtype=np.int64)
    test_y = np.array([index.get(label, -1) for label in test_labels], dtype=np.int64)
    if assignment is None:
        heldout = stratified_folds(list(train_labels), 5, seed) == 0
    else:
        heldout = assignment == 0
    x = embed(list(train_texts))
    test_x = embed(list(test_texts))
    result = choose_score(x, y, len(names), head, seed, heldout=heldout)
    result["test_curves"] = score_curves(x, y, len(names), head, heldout, test_x, test_y)
    return result
