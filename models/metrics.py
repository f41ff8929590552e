"""Classification metrics and seeded stratified splits, in plain numpy.

Kept free of scikit-learn so the build needs only what the project already ships; the
unit tests check these against hand-computed values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def per_class_f1(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]
) -> dict[str, float]:
    """F1 of each label in ``labels`` (0.0 when the label is neither true nor predicted)."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for truth, pred in zip(y_true, y_pred, strict=True):
        if truth == pred:
            tp[truth] += 1
        else:
            fp[pred] += 1
            fn[truth] += 1
    scores = {}
    for label in labels:
        denominator = 2 * tp[label] + fp[label] + fn[label]
        scores[label] = 0.0 if denominator == 0 else 2 * tp[label] / denominator
    return scores


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over ``labels``."""
    scores = per_class_f1(y_true, y_pred, labels)
    return float(np.mean(list(scores.values()))) if scores else 0.0


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Share of exact matches (0.0 for empty input)."""
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    if not y_true:
        return 0.0
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def top_confusions(
    y_true: Sequence[str], y_pred: Sequence[str], limit: int = 10
) -> list[dict[str, str | int]]:
    """The most frequent (true, predicted) error pairs, most frequent first."""
    pairs = Counter((t, p) for t, p in zip(y_true, y_pred, strict=True) if t != p)
    ranked = sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
    return [{"true": t, "pred": p, "count": c} for (t, p), c in ranked[:limit]]


def stratified_folds(labels: Sequence[str], folds: int, seed: int) -> IntArray:
    """Fold index (0..folds-1) for each row, each label spread evenly over the folds."""
    if folds < 2:
        raise ValueError("need at least 2 folds")
    rng = np.random.default_rng(seed)
    assignment = np.empty(len(labels), dtype=np.int64)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    offset = 0
    for label in sorted(by_label):
        rows = np.array(by_label[label], dtype=np.int64)
        rng.shuffle(rows)
        # Rotate the starting fold per label so small classes do not all fill fold 0 first.
        assignment[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return assignment


def stratified_split(
    labels: Sequence[str], test_share: float, seed: int
) -> tuple[IntArray, IntArray]:
    """Seeded per-label split into (train rows, test rows); every label keeps a train row."""
    if not 0.0 < test_share < 1.0:
        raise ValueError("test_share must be in (0, 1)")
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    train: list[int] = []
    test: list[int] = []
    for label in sorted(by_label):
        rows = np.array(by_label[label], dtype=np.int64)
        rng.shuffle(rows)
        n_test = min(len(rows) - 1, round(len(rows) * test_share))
        test.extend(rows[:n_test].tolist())
        train.extend(rows[n_test:].tolist())
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(test), dtype=np.int64)
