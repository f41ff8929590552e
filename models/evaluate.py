"""``models eval``: train through the build pipeline on one file, score another.

The classifier is built exactly as ``models build`` does (int8 encoder, typo
augmentation, head, threshold from training folds only, merge) into a temporary
repository, and the published ``model.onnx`` is run with onnxruntime + tokenizers the
way the server runs it. Test rows labelled with the out-of-scope label (absent from the
training file) measure how well the threshold rejects unknown intents.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.build import BuildOptions, publish_classifier, resolve_source, train_classifier
from models.encoder import check_cosine, int8_cosine, prepare_encoder
from models.intent_data import load_intents
from models.metrics import accuracy, macro_f1, per_class_f1, top_confusions
from models.repository import ModelRepository
from models.runtime import OnnxTextModel
from server.errors import DataError

OOS_LABEL = "oos"


def evaluate(
    train: Path, test: Path, options: BuildOptions, oos_label: str = OOS_LABEL
) -> dict[str, Any]:
    """Train on ``train``, score ``test``; returns the JSON-ready result."""
    started = time.perf_counter()
    train_data = load_intents(train, options.text_col, options.label_col)
    test_data = load_intents(test, options.text_col, options.label_col, min_labels=1)
    if oos_label in train_data.label_counts:
        raise DataError(
            f"the out-of-scope label {oos_label!r} must not appear in the training file"
        )
    source_options = replace(options, intents=train)
    source = resolve_source(source_options)
    with tempfile.TemporaryDirectory(prefix="aftercare-eval-") as tmp:
        art = prepare_encoder(source, Path(tmp), options.cache_dir, options.opset)
        metrics = int8_cosine(art, options.max_length)
        check_cosine(metrics, options.cosine_floor)
        trained = train_classifier(art, train_data, source_options)
        repository = ModelRepository(Path(tmp) / "repository")
        version = publish_classifier(repository, source, art, source_options, metrics, trained)
        model = OnnxTextModel(version.model_path, version.tokenizer_path, options.max_length)
        probabilities = model.run(test_data.texts)["probabilities"]
    labels = trained.labels
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    confident = probabilities.max(axis=1) >= trained.threshold
    in_scope = [i for i, label in enumerate(test_data.labels) if label != oos_label]
    truth = [test_data.labels[i] for i in in_scope]
    guess = [predicted[i] for i in in_scope]
    scored_labels = sorted(set(labels) | set(truth))
    result: dict[str, Any] = {
        "rows_train": len(train_data.texts),
        "rows_test": len(test_data.texts),
        "labels": len(labels),
        "accuracy": accuracy(truth, guess),
        "macro_f1": macro_f1(truth, guess, scored_labels),
        "per_class_f1": per_class_f1(truth, guess, scored_labels),
        "confusions": top_confusions(truth, guess),
        "oos_threshold": trained.threshold,
        "train_cv_accuracy": trained.training["cv_accuracy"],
        "train_cv_macro_f1": trained.training["cv_macro_f1"],
        "int8_cosine_min": metrics["int8_cosine_min"],
        "int8_cosine_mean": metrics["int8_cosine_mean"],
    }
    unknown = sorted(set(truth) - set(labels))
    if unknown:
        result["test_labels_missing_from_train"] = unknown
    oos_rows = [i for i, label in enumerate(test_data.labels) if label == oos_label]
    if oos_rows:
        kept = [i for i in in_scope if confident[i]]
        result["inscope_accuracy"] = (
            sum(predicted[i] == test_data.labels[i] for i in kept) / len(in_scope)
            if in_scope
            else 0.0
        )
        result["inscope_rejected"] = 1.0 - len(kept) / len(in_scope) if in_scope else 0.0
        result["oos_recall"] = sum(not confident[i] for i in oos_rows) / len(oos_rows)
        result["oos_rows"] = len(oos_rows)
    result["seconds"] = time.perf_counter() - started
    return result
