"""Drift of a classifier version: a window of live traffic against its training data.

Per model version, over the last `window` classifications: PSI of the intent mix
against the training label counts in the manifest, the mean top probability, the
out-of-scope rate, and the cosine of the live embedding centroid to the training one.
References come from the manifest: `training.label_counts`, and `training.drift_reference`
(`mean_top_probability`, `oos_rate`, `embedding_centroid`) when the build recorded it;
without it the out-of-scope reference is the threshold's calibration quantile (`oos.
quantile`: by construction the in-scope share under the threshold) and the other two are
reported as unavailable. A figure past its threshold sets `aftercare_drift_alert` and
emits one lifecycle event (log + `events`) when it crosses.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from server.observability.metrics import Metrics

log = logging.getLogger(__name__)
_EPS = 1e-4  # PSI smoothing for intents absent on one side


class DriftThresholds(msgspec.Struct, frozen=True):
    psi: float = 0.25  # intent-mix PSI above this alerts (0.1-0.25 moderate, >0.25 major)
    top_probability_drop: float = 0.10  # reference - live mean top probability
    oos_rate_increase: float = 0.10  # live - reference out-of-scope rate
    centroid_cosine_min: float = 0.90
    min_samples: int = 50  # no alert on fewer live samples


class DriftFigure(msgspec.Struct, frozen=True):
    name: str  # intent_psi | mean_top_probability | oos_rate | centroid_cosine
    live: float
    reference: float
    threshold: float
    alert: bool
    available: bool
    rule: str


class ModelDrift(msgspec.Struct, frozen=True):
    model: str
    version: int
    samples: int
    window: int
    figures: list[DriftFigure]
    live_intent_mix: dict[str, float]
    reference_intent_mix: dict[str, float]
    alert: bool


class DriftEvent(msgspec.Struct, frozen=True):
    at: str
    model: str
    version: int
    figure: str
    live: float
    threshold: float


def psi(live: np.ndarray, reference: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins."""
    p = np.clip(live / max(live.sum(), 1e-12), _EPS, None)
    q = np.clip(reference / max(reference.sum(), 1e-12), _EPS, None)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((p - q) * np.log(p / q)))


@dataclass(slots=True)
class _Window:
    """A ring of the last `size` classifications of one model version."""

    labels: list[str]
    manifest: Mapping[str, Any]
    size: int
    dim: int
    intents: np.ndarray = field(init=False)
    top: np.ndarray = field(init=False)
    oos: np.ndarray = field(init=False)
    vectors: np.ndarray = field(init=False)
    has_vector: np.ndarray = field(init=False)
    n: int = 0

    def __post_init__(self) -> None:
        self.intents = np.zeros(self.size, np.int32)
        self.top = np.zeros(self.size, np.float32)
        self.oos = np.zeros(self.size, np.bool_)
        self.vectors = np.zeros((self.size, self.dim), np.float32)
        self.has_vector = np.zeros(self.size, np.bool_)

    def add(self, probabilities: np.ndarray, out_of_scope: bool,
            embedding: np.ndarray | None) -> None:
        i = self.n % self.size
        best = int(np.argmax(probabilities))
        self.intents[i], self.top[i], self.oos[i] = best, probabilities[best], out_of_scope
        if embedding is not None and embedding.shape[-1] == self.dim:
            self.vectors[i] = embedding
            self.has_vector[i] = True
        else:
            self.has_vector[i] = False
        self.n += 1


class DriftMonitor:
    def __init__(self, window: int, thresholds: DriftThresholds,
                 metrics: Metrics | None = None, evaluate_every: int = 256) -> None:
        self._size = max(1, window)
        self._thresholds = thresholds
        self._metrics = metrics
        self._every = max(1, evaluate_every)
        self._windows: dict[tuple[str, int], _Window] = {}
        self._alerting: set[tuple[str, int, str]] = set()
        self.events: collections.deque[DriftEvent] = collections.deque(maxlen=100)
        # Called with each new alert, from whichever thread evaluated it (the loop, or
        # the metrics server's threads for /api/drift).
        self.on_event: list[Callable[[DriftEvent], None]] = []

    def record(self, name: str, version: int, manifest: Mapping[str, Any],
               probabilities: np.ndarray, out_of_scope: bool,
               embedding: np.ndarray | None) -> None:
        """One live classification (called on the event loop; O(dim))."""
        key = (name, version)
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = _Window(list(manifest.get("labels", [])), manifest,
                                             self._size,
                                             int(manifest.get("embedding_dim", 0) or 0))
        w.add(probabilities, out_of_scope, embedding)
        if w.n % self._every == 0:
            self._evaluate(name, version, w)

    def report(self, model: str = "") -> list[ModelDrift]:
        return [self._evaluate(name, version, w)
                for (name, version), w in sorted(self._windows.items())
                if not model or model == name]

    def _evaluate(self, name: str, version: int, w: _Window) -> ModelDrift:
        t = self._thresholds
        k = min(w.n, w.size)
        labels = w.labels
        training = w.manifest.get("training", {}) or {}
        ref_ref: Mapping[str, Any] = training.get("drift_reference", {}) or {}
        counts = training.get("label_counts", {}) or {}
        live_counts = np.bincount(w.intents[:k], minlength=len(labels)).astype(np.float64)
        ref_counts = np.array([float(counts.get(lbl, 0)) for lbl in labels])
        enough = k >= t.min_samples
        figures: list[DriftFigure] = []

        def add(fig: str, live: float, ref: float | None, threshold: float, bad: bool,
                rule: str) -> None:
            ok = ref is not None and k > 0 and not math.isnan(live)
            figures.append(DriftFigure(fig, live if k else 0.0, ref or 0.0, threshold,
                                       bool(ok and enough and bad), ok, rule))

        has_ref_mix = bool(ref_counts.sum())
        mix_psi = psi(live_counts, ref_counts) if has_ref_mix and k else 0.0
        add("intent_psi", mix_psi, 0.0 if has_ref_mix else None, t.psi, mix_psi > t.psi,
            "alert when PSI(live intent mix, training mix) > threshold")
        top_live = float(w.top[:k].mean()) if k else 0.0
        top_ref = ref_ref.get("mean_top_probability")
        add("mean_top_probability", top_live, top_ref, t.top_probability_drop,
            top_ref is not None and top_ref - top_live > t.top_probability_drop,
            "alert when reference - live > threshold")
        oos_live = float(w.oos[:k].mean()) if k else 0.0
        oos_ref = ref_ref.get("oos_rate", (w.manifest.get("oos") or {}).get("quantile"))
        add("oos_rate", oos_live, oos_ref, t.oos_rate_increase,
            oos_ref is not None and oos_live - oos_ref > t.oos_rate_increase,
            "alert when live - reference > threshold")
        centroid = ref_ref.get("embedding_centroid")
        cos, has_cos = 0.0, False
        vec = w.vectors[:k][w.has_vector[:k]]
        if centroid is not None and len(vec):
            live_c = vec.mean(axis=0)
            ref_c = np.asarray(centroid, np.float32)
            denom = float(np.linalg.norm(live_c) * np.linalg.norm(ref_c))
            cos, has_cos = (float(live_c @ ref_c) / denom, True) if denom else (0.0, False)
        add("centroid_cosine", cos, 1.0 if has_cos else None, t.centroid_cosine_min,
            cos < t.centroid_cosine_min, "alert when cosine(live centroid, training "
            "centroid) < threshold")
        result = ModelDrift(
            model=name, version=version, samples=k, window=w.size, figures=figures,
            live_intent_mix={lbl: float(c / k) for lbl, c in zip(labels, live_counts,
                                                                 strict=True) if k and c},
            reference_intent_mix={lbl: float(c / ref_counts.sum())
                                  for lbl, c in zip(labels, ref_counts, strict=True)
                                  if has_ref_mix and c},
            alert=any(f.alert for f in figures))
        self._publish(result)
        return result

    def _publish(self, d: ModelDrift) -> None:
        for f in d.figures:
            key = (d.model, d.version, f.name)
            if self._metrics is not None and f.available:
                self._metrics.drift_value.labels(d.model, str(d.version), f.name).set(f.live)
                self._metrics.drift_alert.labels(d.model, str(d.version), f.name).set(
                    1 if f.alert else 0)
            if f.alert and key not in self._alerting:
                self._alerting.add(key)
                event = DriftEvent(datetime.now(UTC).isoformat(timespec="milliseconds"),
                                   d.model, d.version, f.name, f.live, f.threshold)
                self.events.append(event)
                log.warning("lifecycle event: drift_alert model=%s version=%d %s=%.4f "
                            "(threshold %.4f)", d.model, d.version, f.name, f.live,
                            f.threshold)
                for listener in self.on_event:
                    listener(event)
            elif not f.alert:
                self._alerting.discard(key)
