"""Training the intent head on the (int8) encoder's embeddings, for ``models build``.

Embeds the training rows (plus typo'd copies), chooses the head on held-out folds
(models/head_select.py), calibrates its temperature and out-of-scope threshold on the same
held-out rows (models/calibrate.py), chooses and calibrates the served out-of-scope
score (models/served_oos.py) and fits the final head on every row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from models.augment import typo_copies
from models.calibrate import fit_temperature, scale_head, scaled_probs
from models.drift_reference import drift_reference
from models.encoder import EncoderArtifacts
from models.graph import Layer
from models.head import predict_proba, train_head
from models.head_select import select_head
from models.intent_data import IntentData
from models.runtime import OnnxTextModel
from models.served_oos import RULE, choose_served_oos, fold_assignment

if TYPE_CHECKING:
    from models.build import BuildOptions


@dataclass(frozen=True, slots=True)
class TrainedClassifier:
    """A trained head with its labels, threshold and training record."""

    layers: list[Layer]  # temperature already folded into the last layer
    labels: list[str]
    threshold: float
    training: dict[str, Any]
    oos: dict[str, Any]
    oos_score: str = "max_prob"  # the graph's `oos_score` output (models/graph.py)
    centroids: npt.NDArray[np.float32] | None = None  # [dim, n_intents], centroid_cosine


def train_classifier(
    art: EncoderArtifacts,
    data: IntentData,
    options: BuildOptions,
    assignment: npt.NDArray[np.int64] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TrainedClassifier:
    """Embed ``data`` with the int8 encoder, pick and calibrate the head on held-out folds,
    fit the final head on every row.

    ``assignment`` (fold per row, -1 = never held out) replaces the k folds, e.g. with
    the held-out share of a fine-tuning run. Rows labelled ``options.oos_label`` are
    out-of-scope examples: they only choose the threshold.
    """
    oos_rows = [i for i, label in enumerate(data.labels) if label == options.oos_label]
    keep = [i for i, label in enumerate(data.labels) if label != options.oos_label]
    texts = [data.texts[i] for i in keep]
    row_labels = [data.labels[i] for i in keep]
    if assignment is not None:
        assignment = assignment[np.array(keep, dtype=np.int64)]
    labels = sorted(set(row_labels))
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in row_labels], dtype=np.int64)
    embedder = OnnxTextModel(art.int8_path, art.tokenizer_path, options.max_length)
    x = embedder.run(texts)["embedding"]
    variants, sources = typo_copies(texts, options.augment_copies, options.seed)
    extra = (
        embedder.run(variants)["embedding"] if variants else np.empty((0, x.shape[1]), np.float32)
    )
    progress(f"train: embedded {len(texts)} rows + {len(variants)} typo copies")
    selection = select_head(
        x, row_labels, labels, options.head, options.seed, extra, sources, assignment
    )
    chosen = selection.chosen
    cv = chosen.cv
    progress(
        f"train: head {chosen.name!r} chosen, held-out accuracy {cv.accuracy:.4f} "
        f"macro-F1 {cv.macro_f1:.4f}"
    )
    temperature = fit_temperature(cv.heldout_probs, cv.heldout_y)
    heldout = scaled_probs(cv.heldout_probs, temperature)
    heldout_max = heldout.max(axis=1)
    folds = fold_assignment(row_labels, cv.folds, options.seed, assignment)
    heldout_correct = heldout.argmax(axis=1) == cv.heldout_y
    if chosen.augmented and sources:
        all_x = np.vstack([x, extra])
        all_y = np.concatenate([y, y[np.asarray(sources, dtype=np.int64)]])
    else:
        all_x, all_y = x, y
    layers = scale_head(train_head(all_x, all_y, len(labels), chosen.head), temperature)
    oos_examples = None
    if oos_rows:
        oos_x = embedder.run([data.texts[i] for i in oos_rows])["embedding"]
        oos_examples = (predict_proba(layers, oos_x), oos_x)
    served = choose_served_oos(
        x, y, labels, chosen.head, options.seed, folds, heldout, heldout_correct,
        options.oos_quantile, assignment, oos_examples,
    )  # fmt: skip
    threshold = served.threshold
    progress(f"train: out-of-scope score {served.kind!r}, threshold {threshold:.4f}")
    oos: dict[str, Any] = {
        "rule": RULE,
        **served.record,
        "temperature": temperature,
        "temperature_method": "NLL of held-out in-scope rows, folded into the last layer",
    }
    if oos_rows:
        oos["method"] = (
            f"maximises held-out in-scope accuracy + recall of the {len(oos_rows)} "
            f"{options.oos_label!r} rows of the training file"
        )
    else:
        oos["method"] = (
            f"quantile {options.oos_quantile} of held-out in-scope {served.kind} "
            f"({cv.folds} fold(s) of the training file)"
        )
        oos["quantile"] = options.oos_quantile
    oos["heldout_inscope_rejected"] = float((served.heldout_scores < threshold).mean())
    training = {
        "rows": len(texts),
        "oos_rows": len(oos_rows),
        "label_counts": dict(sorted(Counter(row_labels).items())),
        "text_col": data.text_col,
        "label_col": data.label_col,
        "data_sha256": data.sha256,
        "augmented_rows": len(variants) if chosen.augmented else 0,
        "augmentation": f"{options.augment_copies} typo'd copies per row (1-2 char edits)"
        if chosen.augmented
        else "none (did not help on the held-out folds)",
        "head": {
            "kind": chosen.head.kind,
            "l2": chosen.head.l2,
            "hidden": chosen.head.hidden if chosen.head.kind == "mlp" else None,
            "precision": "float32",
        },
        "head_selection": selection.as_manifest(len(texts)),
        "cv_folds": cv.folds,
        "cv_accuracy": cv.accuracy,
        "cv_macro_f1": cv.macro_f1,
        "seed": options.seed,
        # For drift monitoring (server/observability/drift.py): the served, temperature-
        # scaled probabilities are what live traffic is compared with.
        "drift_reference": drift_reference(x, heldout_max, served.heldout_scores, threshold),
    }
    return TrainedClassifier(
        layers=layers,
        labels=labels,
        threshold=threshold,
        training=training,
        oos=oos,
        oos_score=served.kind,
        centroids=served.centroids,
    )
