"""Out-of-scope scores (models/oos_scores.py) against naive references and on data
whose answer is known: unknown intents from the same manifold as the known ones."""

from __future__ import annotations

import numpy as np
import pytest

from models.head import HeadConfig
from models.oos_scores import SCORES, _Fitted, choose_score, compare_scores, score_curves

HEAD = HeadConfig(kind="linear", l2=1e-3)


def _clusters(
    seed: int, labels: int, per: int, dim: int = 16, spread: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm points around seeded centres; a shared, strongly anisotropic noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dim)) * spread
    scale = np.geomspace(0.05, 1.5, dim)  # some directions noisy, some tight
    x = np.repeat(centres, per, axis=0) + rng.normal(size=(labels * per, dim)) * scale
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(labels), per).astype(np.int64)


def test_mahalanobis_matches_a_naive_loop() -> None:
    x, y = _clusters(0, 5, 30)
    fitted = _Fitted(x, y, 5, HEAD)
    got = fitted.score("mahalanobis", x[:7], fitted.probs(x[:7]))
    want = [
        -min(float((row - m) @ fitted.precision @ (row - m)) for m in fitted.means)
        for row in x[:7].astype(np.float64)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    means = np.stack([x[y == k].mean(axis=0) for k in range(5)])
    np.testing.assert_allclose(fitted.means, means, rtol=1e-6)


def test_margin_and_max_prob_from_probabilities() -> None:
    x, y = _clusters(1, 3, 10)
    fitted = _Fitted(x, y, 3, HEAD)
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(fitted.score("max_prob", x[:2], probs), [0.7, 0.4], rtol=1e-6)
    np.testing.assert_allclose(fitted.score("margin", x[:2], probs), [0.5, 0.05], atol=1e-6)
    with pytest.raises(ValueError, match="unknown score"):
        fitted.score("energy", x[:2], probs)


def test_choose_score_on_left_out_intents() -> None:
    x, y = _clusters(2, 16, 40, spread=0.5)  # centres close enough to confuse the softmax
    choice = choose_score(x, y, 16, HEAD, seed=0, groups=4)
    recall = choice["pseudo_oos_recall"]
    assert set(recall) == set(SCORES)
    assert choice["chosen"] == max(SCORES, key=lambda k: recall[k])
    # Anisotropic clusters: a distance that knows the noise's shape beats the softmax
    # (measured 1.0 vs 0.87).
    assert choice["chosen"] == "mahalanobis"
    assert recall["mahalanobis"] > recall["max_prob"] + 0.1, recall


def test_score_curves_reject_as_calibrated() -> None:
    all_x, all_y = _clusters(3, 8, 90)
    fresh = np.arange(len(all_y)) % 3 == 0  # a third of each intent: the test rows
    x, y, test_x, test_y = all_x[~fresh], all_y[~fresh], all_x[fresh], all_y[fresh]
    heldout = np.zeros(len(y), dtype=bool)
    heldout[::3] = True
    known = y < 6  # intents 6 and 7 are unknown at test time
    curves = score_curves(
        x[known], y[known], 6, HEAD, heldout[known], test_x, np.where(test_y < 6, test_y, -1)
    )
    for kind in SCORES:
        rejected = [p["inscope_rejected"] for p in curves[kind]]
        recall = [p["oos_recall"] for p in curves[kind]]
        assert rejected == sorted(rejected) and recall == sorted(recall)
        at_5 = next(p for p in curves[kind] if p["heldout_rejection"] == 0.05)
        assert at_5["inscope_rejected"] < 0.15  # held-out quantile carries to fresh rows


def test_compare_scores_counts_unseen_test_labels_as_oos() -> None:
    x, y = _clusters(5, 6, 40)
    names = [f"intent{k}" for k in range(6)]
    texts = [f"row{i}" for i in range(len(y))]
    table = dict(zip(texts, x, strict=True))
    test_texts = texts[::5]
    test_labels = ["unknown" if y[i] == 5 else names[y[i]] for i in range(0, len(y), 5)]
    train = [i for i in range(len(y)) if y[i] != 5]
    out = compare_scores(
        lambda batch: np.stack([table[t] for t in batch]),
        [texts[i] for i in train],
        [names[y[i]] for i in train],
        test_texts,
        test_labels,
        HEAD,
        seed=0,
    )
    assert out["chosen"] in SCORES
    assert set(out["test_curves"]) == set(SCORES)
