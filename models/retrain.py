"""Retraining the intent classifier from human corrections: a thin layer over the build.

The base training file plus the stored corrections (each repeated `weight` times, the
build's way of weighting rows) go through the existing `train_classifier` and
`publish_classifier`. Before anything is written, the candidate recipe and the current
one are scored on the same held-out folds of the base file (corrections only ever join
the training part), and a candidate that is worse is refused unless forced. The
manifest records the data it was trained on: base file hash, number of corrections and
their id range, and both held-out figures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.build import BuildOptions, publish_classifier, resolve_source, train_classifier
from models.encoder import check_cosine, int8_cosine, prepare_encoder
from models.head import predict_proba, train_head
from models.intent_data import IntentData, default_intents_path, load_intents
from models.metrics import macro_f1, stratified_folds
from models.repository import ModelRepository, ModelVersion
from models.runtime import OnnxTextModel
from server.errors import Conflict, DataError

FOLDS = 5


@dataclass(frozen=True, slots=True)
class LabelledExample:
    """One correction: its store sequence number, redacted text and true label."""

    seq: int
    text: str
    label: str


@dataclass(frozen=True, slots=True)
class RetrainResult:
    version: ModelVersion
    figures: dict[str, Any]


def heldout_macro_f1(x: np.ndarray, y: np.ndarray, labels: Sequence[str], options: BuildOptions,
                     extra_x: np.ndarray | None = None, extra_y: np.ndarray | None = None
                     ) -> float:
    """Macro-F1 on stratified held-out folds of the base rows; extra rows train only."""
    names = list(labels)
    smallest = int(np.bincount(y, minlength=len(names)).min())
    folds = min(FOLDS, smallest)
    if folds < 2:
        raise DataError("every base label needs at least 2 rows for held-out folds")
    assignment = stratified_folds([names[i] for i in y], folds, options.seed)
    predicted = np.empty(len(y), dtype=np.int64)
    for fold in range(folds):
        held = assignment == fold
        train_x, train_y = x[~held], y[~held]
        if extra_x is not None and extra_y is not None and len(extra_y):
            train_x, train_y = np.vstack([train_x, extra_x]), np.concatenate([train_y, extra_y])
        layers = train_head(train_x, train_y, len(names), options.head)
        predicted[held] = predict_proba(layers, x[held]).argmax(axis=1)
    return macro_f1([names[i] for i in y], [names[i] for i in predicted], names)


def retrain_classifier(
    options: BuildOptions,
    corrections: Sequence[LabelledExample],
    active: ModelVersion | None,
    weight: int = 3,
    force: bool = False,
) -> RetrainResult:
    """Publish the next classifier version trained on base data + weighted corrections."""
    if weight < 1:
        raise DataError("weight must be >= 1")
    base = load_intents(options.intents or default_intents_path(), options.text_col,
                        options.label_col)
    labels = base.label_names
    usable = [c for c in corrections if c.label in labels]
    skipped = len(corrections) - len(usable)
    if not usable:
        raise DataError(f"none of {len(corrections)} corrections has a label of the base data")
    index = {label: i for i, label in enumerate(labels)}
    source = resolve_source(options)
    with tempfile.TemporaryDirectory(prefix="aftercare-retrain-") as tmp:
        art = prepare_encoder(source, Path(tmp), options.cache_dir, options.opset)
        metrics = int8_cosine(art, options.max_length)
        check_cosine(metrics, options.cosine_floor)
        encoder = OnnxTextModel(art.int8_path, art.tokenizer_path, options.max_length)
        x = encoder.run(list(base.texts))["embedding"]
        y = np.array([index[label] for label in base.labels], dtype=np.int64)
        cx = np.repeat(encoder.run([c.text for c in usable])["embedding"], weight, axis=0)
        cy = np.repeat(np.array([index[c.label] for c in usable], dtype=np.int64), weight)
        candidate = heldout_macro_f1(x, y, labels, options, cx, cy)
        current = _current_figure(active) if active is not None else None
        if current is None:
            current = heldout_macro_f1(x, y, labels, options)
        figures = {
            "base_heldout_macro_f1": round(candidate, 6),
            "active_base_heldout_macro_f1": round(current, 6),
            "active_version": active.version if active is not None else 0,
            "corrections": len(usable),
            "corrections_skipped_unknown_label": skipped,
            "correction_ids": [min(c.seq for c in usable), max(c.seq for c in usable)],
            "weight": weight,
            "base_sha256": base.sha256,
        }
        if candidate < current and not force:
            raise Conflict(f"the retrained classifier is worse on the base held-out folds "
                           f"(macro-F1 {candidate:.4f} < {current:.4f} of the active version); "
                           f"not written (use --force to write it anyway)")
        data = IntentData(
            texts=base.texts + tuple(c.text for c in usable for _ in range(weight)),
            labels=base.labels + tuple(c.label for c in usable for _ in range(weight)),
            sha256=base.sha256, text_col=base.text_col, label_col=base.label_col,
        )
        trained = train_classifier(art, data, options)
        trained.training["retrain"] = {**figures, "forced": force and candidate < current}
        metrics = {**metrics, "base_heldout_macro_f1": candidate,
                   "active_base_heldout_macro_f1": current}
        version = publish_classifier(ModelRepository(options.repository), source, art,
                                     replace(options, only="classifier"), metrics, trained)
    return RetrainResult(version, figures)


def _current_figure(active: ModelVersion) -> float | None:
    """The active version's own base held-out figure, when a retrain recorded one."""
    value = active.manifest.get("metrics", {}).get("base_heldout_macro_f1")
    return None if value is None else float(value)
