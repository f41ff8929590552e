"""The out-of-scope score the classifier serves: chosen and calibrated on the training file.

``models.oos_scores.choose_score`` picks, among the scores the graph computes
(``GRAPH_OOS_SCORES``: max probability, top-two margin, cosine to the nearest intent
centroid), the one that rejects most left-out intents of the training file; max_prob
wins a tie. Its threshold comes from the same held-out folds as the head's temperature:
each held-out row is scored by a head (probabilities, temperature-scaled) and centroids
fitted without its fold. The quantile of those in-scope scores sets the threshold, or,
with out-of-scope rows in the training file, the best sum of held-out in-scope accuracy
and their recall under the final model. The graph output is ``oos_score``; a message is
out of scope when ``oos_score < oos_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from models.calibrate import best_threshold, rejection_threshold
from models.graph import GRAPH_OOS_SCORES
from models.head import HeadConfig
from models.metrics import stratified_folds
from models.oos_scores import (
    choose_score,
    cosine_score,
    intent_directions,
    probability_score,
)

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
RULE = "out_of_scope when oos_score < oos_threshold"
MEANING = {
    "max_prob": "max(probabilities), temperature-scaled",
    "margin": "top probability minus the second, temperature-scaled",
    "centroid_cosine": "max cosine of the embedding to the unit per-intent mean embeddings",
}


@dataclass(frozen=True, slots=True)
class ServedOos:
    """The served score, its graph constants and threshold, and the manifest record."""

    kind: str
    centroids: FloatArray | None  # [dim, n_intents], unit columns, centroid_cosine only
    threshold: float
    heldout_scores: npt.NDArray[np.float64]  # held-out in-scope rows, row order
    record: dict[str, Any]


def fold_assignment(
    labels: Sequence[str], folds: int, seed: int, assignment: IntArray | None
) -> IntArray:
    """The folds ``models.head.cross_validate`` used (-1 = never held out)."""
    if assignment is not None:
        return assignment
    return stratified_folds(list(labels), folds, seed)


def heldout_cosines(x: FloatArray, y: IntArray, n_labels: int, folds: IntArray) -> npt.NDArray[
    np.float64
]:
    """Centroid cosine of each held-out row to centroids of the rows outside its fold."""
    out = np.zeros(len(y))
    for fold in range(int(folds.max()) + 1):
        held = folds == fold
        if held.any():
            out[held] = cosine_score(x[held], intent_directions(x[~held], y[~held], n_labels))
    return out[folds >= 0]


def choose_served_oos(
    x: FloatArray,
    y: IntArray,
    labels: Sequence[str],
    head: HeadConfig,
    seed: int,
    folds: IntArray,
    heldout_probs: FloatArray,
    heldout_correct: npt.NDArray[np.bool_],
    quantile: float,
    assignment: IntArray | None = None,
    oos: tuple[FloatArray, FloatArray] | None = None,
) -> ServedOos:
    """Choose the served score on ``x``/``y`` and calibrate its threshold.

    ``heldout_probs`` are the temperature-scaled held-out probabilities of the rows with
    ``folds >= 0`` (row order); ``oos`` the training file's out-of-scope rows as (final
    model probabilities, embeddings), when it has any.
    """
    n_labels = len(labels)
    # The rows `models eval`'s oos_scores report holds out too, so both choose alike.
    if assignment is None:
        heldout = stratified_folds([labels[k] for k in y.tolist()], 5, seed) == 0
    else:
        heldout = assignment == 0
    choice = choose_score(x, y, n_labels, head, seed, heldout=heldout, kinds=GRAPH_OOS_SCORES)
    kind = str(choice["chosen"])
    centroids = None
    if kind == "centroid_cosine":
        directions = intent_directions(x, y, n_labels)
        centroids = np.ascontiguousarray(directions.T)
        scores = heldout_cosines(x, y, n_labels, folds)
    else:
        scores = probability_score(kind, heldout_probs)
    record: dict[str, Any] = {"score": kind, "score_meaning": MEANING[kind], "choice": choice}
    if oos is not None:
        oos_probs, oos_x = oos
        if centroids is None:
            oos_scores = probability_score(kind, oos_probs)
        else:
            oos_scores = cosine_score(oos_x, directions)
        threshold = best_threshold(
            scores.astype(np.float32), heldout_correct, oos_scores.astype(np.float32)
        )
    else:
        threshold = rejection_threshold(scores.astype(np.float32), quantile)
    return ServedOos(kind, centroids, threshold, scores, record)
