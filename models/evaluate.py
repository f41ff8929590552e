"""``models eval``: train through the build pipeline on one file, score another.

The classifier is built exactly as ``models build`` does (optionally fine-tuned encoder,
int8 encoder, head chosen and calibrated on held-out folds of the training file only,
merge) into a temporary repository, and the published ``model.onnx`` is run with
onnxruntime + tokenizers the way the server runs it. The same head on the fp32 encoder
gives ``fp32_accuracy`` beside the int8 ``accuracy``. Test rows labelled with the
out-of-scope label measure the served rule, the published graph's ``oos_score`` against
its threshold (``oos_recall``; ``oos_score`` names the kind the build chose), and the
whole trade-off (``oos_curve``); all out-of-scope scores are compared on the same rows
(``oos_scores``, models/oos_scores.py). ``holdout_intents`` makes such rows from a set
without an OOS label by removing that many seeded intents from training and relabelling
their test rows.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.build import (
    BuildOptions,
    finetuned_classifier_encoder,
    publish_classifier,
    resolve_source,
)
from models.buildlog import build_log
from models.calibrate import oos_curve
from models.encoder import check_cosine, int8_cosine, prepare_encoder
from models.head import HeadConfig, predict_proba
from models.intent_data import IntentData, load_intents
from models.metrics import accuracy, macro_f1, per_class_f1, top_confusions
from models.oos_scores import compare_scores
from models.repository import ModelRepository
from models.runtime import OnnxTextModel
from models.train import train_classifier
from server.errors import DataError

OOS_LABEL = "oos"
EVAL_LOG_DIR = Path("var") / "log" / "models-eval"


@dataclass(frozen=True, slots=True)
class Split:
    """Training and test rows after any intents were held out as out of scope."""

    train: IntentData
    test_texts: list[str]
    test_labels: list[str]
    held_out: list[str]


def _hold_out(train: IntentData, test: IntentData, count: int, seed: int, oos: str) -> Split:
    names = [n for n in train.label_names if n != oos]
    if count and count >= len(names) - 1:
        raise DataError(f"cannot hold out {count} of {len(names)} intents")
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(names, size=count, replace=False).tolist()) if count else []
    keep = [i for i, label in enumerate(train.labels) if label not in held]
    kept = replace(
        train,
        texts=tuple(train.texts[i] for i in keep),
        labels=tuple(train.labels[i] for i in keep),
    )
    labels = [oos if label in held else label for label in test.labels]
    return Split(kept, list(test.texts), labels, held)


def evaluate(
    train: Path,
    test: Path,
    options: BuildOptions,
    oos_label: str = OOS_LABEL,
    holdout_intents: int = 0,
) -> dict[str, Any]:
    """Train on ``train``, score ``test``; returns the JSON-ready result."""
    started = time.perf_counter()
    split = _hold_out(
        load_intents(train, options.text_col, options.label_col),
        load_intents(test, options.text_col, options.label_col, min_labels=1),
        holdout_intents,
        options.seed,
        oos_label,
    )
    source_options = replace(options, intents=train, oos_label=oos_label)
    source = resolve_source(source_options)
    with tempfile.TemporaryDirectory(prefix="aftercare-eval-") as tmp:
        repository = ModelRepository(Path(tmp) / "repository")
        with build_log(repository.root, options.quiet, EVAL_LOG_DIR) as log:
            assignment, record = None, None
            if options.finetune:
                source, assignment, record = finetuned_classifier_encoder(
                    source, split.train, source_options, Path(tmp), log
                )
            # A fine-tuned encoder is exported fresh, never into the shared cache.
            cache = options.cache_dir if assignment is None else None
            art = prepare_encoder(source, Path(tmp), cache, options.opset, log)
            metrics = int8_cosine(art, options.max_length)
            check_cosine(metrics, options.cosine_floor, options.short_cosine_floor)
            trained = train_classifier(art, split.train, source_options, assignment, log)
            version = publish_classifier(repository, source, art, source_options, metrics, trained)
        model = OnnxTextModel(version.model_path, version.tokenizer_path, options.max_length)
        served = model.run(split.test_texts)
        probabilities = served["probabilities"]
        # The served rule: the graph's oos_score (max(probabilities) for older graphs).
        served_score = served.get("oos_score", probabilities.max(axis=1))
        fp32 = OnnxTextModel(art.fp32_path, art.tokenizer_path, options.max_length)
        fp32_probs = predict_proba(trained.layers, fp32.run(split.test_texts)["embedding"])
        scores = None
        if oos_label in split.test_labels:
            in_train = [i for i, label in enumerate(split.train.labels) if label != oos_label]
            scores = compare_scores(
                lambda texts: model.run(texts)["embedding"],
                [split.train.texts[i] for i in in_train],
                [split.train.labels[i] for i in in_train],
                split.test_texts,
                split.test_labels,
                HeadConfig(kind="linear", l2=float(trained.training["head"]["l2"])),
                options.seed,
                None if assignment is None else assignment[np.array(in_train, dtype=np.int64)],
            )
    labels = trained.labels
    predicted = [labels[i] for i in probabilities.argmax(axis=1)]
    fp32_predicted = [labels[i] for i in fp32_probs.argmax(axis=1)]
    in_scope = [i for i, label in enumerate(split.test_labels) if label != oos_label]
    truth = [split.test_labels[i] for i in in_scope]
    guess = [predicted[i] for i in in_scope]
    fp32_guess = [fp32_predicted[i] for i in in_scope]
    scored_labels = sorted(set(labels) | set(truth))
    result: dict[str, Any] = {
        "rows_train": len(split.train.texts),
        "rows_test": len(split.test_texts),
        "labels": len(labels),
        "accuracy": accuracy(truth, guess),
        "macro_f1": macro_f1(truth, guess, scored_labels),
        "fp32_accuracy": accuracy(truth, fp32_guess),
        "fp32_macro_f1": macro_f1(truth, fp32_guess, scored_labels),
        "per_class_f1": per_class_f1(truth, guess, scored_labels),
        "confusions": top_confusions(truth, guess),
        "oos_threshold": trained.threshold,
        "oos_score": trained.oos_score,
        "oos_score_choice": trained.oos.get("choice"),
        "oos_temperature": trained.oos["temperature"],
        "train_cv_accuracy": trained.training["cv_accuracy"],
        "train_cv_macro_f1": trained.training["cv_macro_f1"],
        "head": trained.training["head_selection"],
        "int8_cosine_min": metrics["int8_cosine_min"],
        "int8_cosine_mean": metrics["int8_cosine_mean"],
        "finetune": record,
        "log_file": str(log.path),
    }
    result["int8_gap"] = result["fp32_accuracy"] - result["accuracy"]
    unknown = sorted(set(truth) - set(labels))
    if unknown:
        result["test_labels_missing_from_train"] = unknown
    if split.held_out:
        result["held_out_intents"] = split.held_out
    oos_rows = [i for i, label in enumerate(split.test_labels) if label == oos_label]
    if oos_rows:
        correct = np.array([predicted[i] == split.test_labels[i] for i in in_scope], dtype=bool)
        scope_score = served_score[np.array(in_scope, dtype=np.int64)]
        oos_score = served_score[np.array(oos_rows, dtype=np.int64)]
        accepted = scope_score >= trained.threshold
        result["inscope_accuracy"] = float((accepted & correct).mean()) if in_scope else 0.0
        result["inscope_rejected"] = float(1.0 - accepted.mean()) if in_scope else 0.0
        result["oos_recall"] = float((oos_score < trained.threshold).mean())
        result["oos_rows"] = len(oos_rows)
        result["oos_curve"] = oos_curve(scope_score, correct, oos_score)
        result["oos_scores"] = scores
    result["seconds"] = time.perf_counter() - started
    return result
