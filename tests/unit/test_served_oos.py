"""The served out-of-scope score's choice and calibration (models/served_oos.py) on data
whose answer is known; the graph output is checked in test_graph_oos_score.py."""

from __future__ import annotations

import numpy as np
import pytest

from models.calibrate import best_threshold, rejection_threshold
from models.graph import GRAPH_OOS_SCORES
from models.head import HeadConfig, cross_validate, predict_proba
from models.metrics import stratified_folds
from models.oos_scores import choose_score, intent_directions
from models.served_oos import ServedOos, choose_served_oos, heldout_cosines

HEAD = HeadConfig(kind="linear", l2=1e-3)


def _clusters(seed: int, centres: np.ndarray, per: int, noise: float) -> tuple[np.ndarray, ...]:
    """Unit-norm rows around ``centres`` with isotropic noise."""
    rng = np.random.default_rng(seed)
    x = np.repeat(centres, per, axis=0)
    x = x + rng.normal(size=x.shape) * noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(len(centres)), per).astype(np.int64)


def _served(x: np.ndarray, y: np.ndarray, quantile: float = 0.05) -> tuple[ServedOos, dict]:
    labels = [f"i{k}" for k in range(int(y.max()) + 1)]
    names = [labels[k] for k in y]
    cv = cross_validate(x, names, labels, HEAD, seed=0)
    folds = stratified_folds(names, cv.folds, 0)
    correct = cv.heldout_probs.argmax(axis=1) == cv.heldout_y
    served = choose_served_oos(x, y, labels, HEAD, 0, folds, cv.heldout_probs, correct, quantile)
    heldout = stratified_folds(names, 5, 0) == 0  # the rows eval's oos_scores holds out
    choice = choose_score(x, y, len(labels), HEAD, 0, heldout=heldout, kinds=GRAPH_OOS_SCORES)
    return served, choice


def test_centroid_cosine_served_where_unknown_intents_point_elsewhere() -> None:
    # Well-apart random directions: a linear softmax is confident far from its data,
    # while an unknown intent's rows are far from every known centroid.
    rng = np.random.default_rng(0)
    x, y = _clusters(1, rng.normal(size=(16, 8)), 30, noise=0.5)
    served, choice = _served(x, y)
    assert served.kind == choice["chosen"] == "centroid_cosine", choice
    recall = choice["pseudo_oos_recall"]
    assert recall["centroid_cosine"] > recall["max_prob"] + 0.1, recall
    assert served.centroids is not None
    np.testing.assert_allclose(
        served.centroids.T, intent_directions(x, y, 16), atol=1e-6
    )
    assert served.record["score"] == "centroid_cosine"


def test_max_prob_wins_ties_and_keeps_the_temperature_scaled_quantile() -> None:
    # Well-apart tight clusters: every score rejects every left-out intent (a tie).
    rng = np.random.default_rng(3)
    x, y = _clusters(3, rng.normal(size=(8, 24)), 20, noise=0.05)
    served, choice = _served(x, y)
    assert set(choice["pseudo_oos_recall"].values()) == {1.0}, choice
    assert served.kind == "max_prob" and served.centroids is None
    # Exactly the threshold the build served before the choice existed.
    labels = [f"i{k}" for k in range(8)]
    cv = cross_validate(x, [labels[k] for k in y], labels, HEAD, seed=0)
    want = rejection_threshold(cv.heldout_probs.max(axis=1), 0.05)
    assert served.threshold == want


def test_oos_rows_of_the_training_file_set_the_centroid_threshold() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, 8))
    x, y = _clusters(1, centres, 30, noise=0.5)
    known = y < 12  # the last four intents play the file's out-of-scope rows
    labels = [f"i{k}" for k in range(12)]
    xk, yk = x[known], y[known]
    names = [labels[k] for k in yk]
    cv = cross_validate(xk, names, labels, HEAD, seed=0)
    folds = stratified_folds(names, cv.folds, 0)
    correct = cv.heldout_probs.argmax(axis=1) == cv.heldout_y
    oos_x = x[~known]
    oos_probs = predict_proba([(np.zeros((12, 8), np.float32), np.zeros(12, np.float32))], oos_x)
    served = choose_served_oos(
        xk, yk, labels, HEAD, 0, folds, cv.heldout_probs, correct, 0.05, oos=(oos_probs, oos_x)
    )
    assert served.kind == "centroid_cosine"
    oos_cos = (oos_x @ intent_directions(xk, yk, 12).T).max(axis=1)
    want = best_threshold(served.heldout_scores.astype(np.float32), correct, oos_cos)
    assert served.threshold == pytest.approx(want, abs=1e-6)
    assert float((oos_cos < served.threshold).mean()) > 0.5


@pytest.mark.parametrize("quantile", [0.05, 0.2])
def test_threshold_rejects_the_quantile_of_heldout_inscope_rows(quantile: float) -> None:
    rng = np.random.default_rng(4)
    x, y = _clusters(4, rng.normal(size=(10, 8)), 30, noise=0.5)
    served, _ = _served(x, y, quantile)
    rejected = float((served.heldout_scores < served.threshold).mean())
    assert abs(rejected - quantile) <= 1.0 / len(y) + 1e-9


def test_heldout_cosines_use_centroids_without_the_rows_fold() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 6)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.arange(30) % 3
    folds = np.arange(30) % 4 - 1  # fold -1 rows are never held out, always fitted
    got = heldout_cosines(x, y, 3, folds)
    want = []
    for i in np.flatnonzero(folds >= 0):
        fit = folds != folds[i]
        means = [x[fit & (y == k)].mean(axis=0) for k in range(3)]
        want.append(max(float(x[i] @ m / np.linalg.norm(m)) for m in means))
    np.testing.assert_allclose(got, want, atol=1e-6)
