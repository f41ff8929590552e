"""Retraining the intent classifier from human corrections: a thin layer over the build.

The base training file plus the stored corrections (each repeated `weight` times, the
build's way of weighting rows) go through the existing `train_classifier` and
`publish_classifier`; with ``options.finetune`` the encoder is fine-tuned on them first,
as ``models build --finetune`` does. Before anything is written, the candidate recipe
and the current one are scored on the same held-out folds of the base file (corrections
only ever join the training part; with fine-tuning, on the base rows of the
fine-tuning's held-out share, against the frozen recipe on the same rows), and a
candidate that is worse is refused unless forced. The manifest records the data it was
trained on: base file hash, number of corrections and their id range, and both
held-out figures.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.build import (
    BuildOptions,
    finetuned_classifier_encoder,
    publish_classifier,
    resolve_source,
    train_classifier,
)
from models.buildlog import build_log
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
    source = original = resolve_source(options)
    data = IntentData(
        texts=base.texts + tuple(c.text for c in usable for _ in range(weight)),
        labels=base.labels + tuple(c.label for c in usable for _ in range(weight)),
        sha256=base.sha256, text_col=base.text_col, label_col=base.label_col,
    )
    y = np.array([index[label] for label in base.labels], dtype=np.int64)
    cy = np.repeat(np.array([index[c.label] for c in usable], dtype=np.int64), weight)
    with tempfile.TemporaryDirectory(prefix="aftercare-retrain-") as tmp, \
            build_log(options.repository, options.quiet) as log:
        assignment, record = None, None
        if options.finetune:
            source, assignment, record = finetuned_classifier_encoder(
                source, data, options, Path(tmp), log
            )
        # A fine-tuned encoder is exported fresh, never into the shared cache.
        cache = options.cache_dir if assignment is None else None
        art = prepare_encoder(source, Path(tmp), cache, options.opset, log)
        metrics = int8_cosine(art, options.max_length)
        check_cosine(metrics, options.cosine_floor)
        encoder = OnnxTextModel(art.int8_path, art.tokenizer_path, options.max_length)
        x = encoder.run(list(base.texts))["embedding"]
        cx = np.repeat(encoder.run([c.text for c in usable])["embedding"], weight, axis=0)
        current = _current_figure(active) if active is not None else None
        if assignment is None:
            candidate = heldout_macro_f1(x, y, labels, options, cx, cy)
            if current is None:
                current = heldout_macro_f1(x, y, labels, options)
        else:
            # The encoder trained on all but its held-out share: score only base rows of
            # that share, for the candidate and (without corrections) the frozen recipe.
            held = assignment[: len(y)] == 0
            candidate = _macro_f1_on(x, y, held, labels, options, cx, cy)
            if current is None:
                frozen = prepare_encoder(original, Path(tmp) / "frozen", options.cache_dir,
                                         options.opset, log)
                fx = OnnxTextModel(frozen.int8_path, frozen.tokenizer_path,
                                   options.max_length).run(list(base.texts))["embedding"]
                current = _macro_f1_on(fx, y, held, labels, options)
        figures = {
            "base_heldout_macro_f1": round(candidate, 6),
            "active_base_heldout_macro_f1": round(current, 6),
            "active_version": active.version if active is not None else 0,
            "corrections": len(usable),
            "corrections_skipped_unknown_label": skipped,
            "correction_ids": [min(c.seq for c in usable), max(c.seq for c in usable)],
            "weight": weight,
            "base_sha256": base.sha256,
            "heldout": "5 stratified folds of the base file" if assignment is None
            else "the fine-tuning's held-out base rows",
        }
        if candidate < current and not force:
            raise Conflict(f"the retrained classifier is worse on the base held-out folds "
                           f"(macro-F1 {candidate:.4f} < {current:.4f} of the active version); "
                           f"not written (use --force to write it anyway)")
        trained = train_classifier(art, data, options, assignment, log)
        trained.training["retrain"] = {**figures, "forced": force and candidate < current}
        if record is not None:
            trained.training["finetune"] = record
        metrics = {**metrics, "base_heldout_macro_f1": candidate,
                   "active_base_heldout_macro_f1": current}
        version = publish_classifier(ModelRepository(options.repository), source, art,
                                     replace(options, only="classifier"), metrics, trained)
    return RetrainResult(version, figures)


def _macro_f1_on(x: np.ndarray, y: np.ndarray, held: np.ndarray, labels: Sequence[str],
                 options: BuildOptions, extra_x: np.ndarray | None = None,
                 extra_y: np.ndarray | None = None) -> float:
    """Macro-F1 on the ``held`` base rows of a head trained on the others (+ extra rows)."""
    names = list(labels)
    train_x, train_y = x[~held], y[~held]
    if extra_x is not None and extra_y is not None and len(extra_y):
        train_x, train_y = np.vstack([train_x, extra_x]), np.concatenate([train_y, extra_y])
    layers = train_head(train_x, train_y, len(names), options.head)
    predicted = predict_proba(layers, x[held]).argmax(axis=1)
    return macro_f1([names[i] for i in y[held]], [names[i] for i in predicted], names)


def _current_figure(active: ModelVersion) -> float | None:
    """The active version's own base held-out figure, when a retrain recorded one."""
    value = active.manifest.get("metrics", {}).get("base_heldout_macro_f1")
    return None if value is None else float(value)
