"""Drift figures of a live window against manifest references, and their alerts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from server.observability.drift import DriftMonitor, DriftThresholds, psi
from server.observability.metrics import Metrics

LABELS = ["a", "b", "c"]


def manifest(reference: dict | None = None) -> dict:
    training: dict = {"label_counts": {"a": 50, "b": 30, "c": 20}}
    if reference is not None:
        training["drift_reference"] = reference
    return {"labels": LABELS, "embedding_dim": 2, "oos": {"quantile": 0.05},
            "training": training}


def onehot(i: int, p: float = 0.9) -> np.ndarray:
    out = np.full(3, (1 - p) / 2, np.float32)
    out[i] = p
    return out


def test_psi_matches_the_formula() -> None:
    live, ref = np.array([30.0, 30.0, 40.0]), np.array([50.0, 30.0, 20.0])
    p, q = live / live.sum(), ref / ref.sum()
    assert psi(live, ref) == pytest.approx(float(np.sum((p - q) * np.log(p / q))))
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_traffic_like_training_does_not_alert() -> None:
    mon = DriftMonitor(100, DriftThresholds(min_samples=10), evaluate_every=1000)
    ref = {"mean_top_probability": 0.9, "oos_rate": 0.0, "embedding_centroid": [1.0, 0.0]}
    for i in [0] * 5 + [1] * 3 + [2] * 2:
        mon.record("clf", 1, manifest(ref), onehot(i), False, np.array([1.0, 0.05]))
    (d,) = mon.report()
    f = {x.name: x for x in d.figures}
    assert d.samples == 10 and not d.alert
    assert f["intent_psi"].live == pytest.approx(0.0, abs=1e-9)
    assert f["mean_top_probability"].live == pytest.approx(0.9, abs=1e-6)
    assert f["centroid_cosine"].live == pytest.approx(1.0 / math.hypot(1.0, 0.05))
    assert d.reference_intent_mix == pytest.approx({"a": 0.5, "b": 0.3, "c": 0.2})


def test_each_figure_alerts_past_its_threshold_once() -> None:
    metrics = Metrics()
    mon = DriftMonitor(20, DriftThresholds(min_samples=10), metrics, evaluate_every=1000)
    ref = {"mean_top_probability": 0.9, "oos_rate": 0.0, "embedding_centroid": [1.0, 0.0]}
    for _ in range(30):  # all "c", unsure, out of scope, pointing elsewhere
        mon.record("clf", 1, manifest(ref), onehot(2, 0.5), True, np.array([0.0, 1.0]))
    (d,) = mon.report()
    assert d.samples == 20 and d.window == 20  # the ring keeps the last 20
    assert {f.name for f in d.figures if f.alert} == {
        "intent_psi", "mean_top_probability", "oos_rate", "centroid_cosine"}
    mon.report()
    assert len(mon.events) == 4  # one lifecycle event per crossing, not per report
    text = metrics.exposition().decode()
    assert 'aftercare_drift_alert{metric="oos_rate",model="clf",version="1"} 1.0' in text


def test_missing_references_are_unavailable_and_few_samples_never_alert() -> None:
    mon = DriftMonitor(50, DriftThresholds(min_samples=10), evaluate_every=1000)
    for _ in range(5):
        mon.record("clf", 2, manifest(), onehot(2, 0.4), True, None)
    (d,) = mon.report()
    f = {x.name: x for x in d.figures}
    assert not f["mean_top_probability"].available and not f["centroid_cosine"].available
    assert f["oos_rate"].available and f["oos_rate"].reference == pytest.approx(0.05)
    assert f["intent_psi"].live > 0.25 and not d.alert  # 5 < min_samples


def test_build_time_reference_feeds_the_monitor() -> None:
    from models.drift_reference import drift_reference

    emb = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    # The out-of-scope rate is that of the served `oos_score`, not of the top probability.
    ref = drift_reference(emb, np.array([0.9, 0.8, 0.3, 0.7]), np.array([0.9, 0.4, 0.3, 0.7]),
                          threshold=0.5)
    assert ref["mean_top_probability"] == pytest.approx(0.675)
    assert ref["oos_rate"] == pytest.approx(0.5)
    assert ref["embedding_centroid"] == [0.5, 0.5]
    mon = DriftMonitor(10, DriftThresholds(min_samples=1), evaluate_every=1000)
    mon.record("clf", 3, manifest(ref), onehot(0, 0.7), False, np.array([0.6, 0.8]))
    (d,) = mon.report()
    f = {x.name: x for x in d.figures}
    assert all(x.available for x in d.figures)
    assert f["centroid_cosine"].live == pytest.approx((0.3 + 0.4) / (0.5 ** 0.5))
