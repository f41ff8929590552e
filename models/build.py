"""Building the served models: the int8 sentence embedder and the merged intent classifier.

One encoder preparation (export, pooling, per-channel int8, cosine gate) feeds both. The
classifier's head is trained on embeddings from the same int8 graph it is merged onto,
so training and serving see identical features; its out-of-scope threshold comes from
held-out folds of the training file alone.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.augment import typo_copies
from models.drift_reference import drift_reference
from models.encoder import (
    DEFAULT_OPSET,
    EncoderArtifacts,
    EncoderSource,
    check_cosine,
    default_source,
    int8_cosine,
    prepare_encoder,
    source_from_dir,
    write_served_tokenizer,
)
from models.graph import Layer, append_head
from models.head import HeadConfig, cross_validate, oos_threshold, train_head
from models.intent_data import IntentData, default_intents_path, load_intents
from models.publish import new_staging_dir, publish_version
from models.repository import (
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelRepository,
    ModelVersion,
    sha256_file,
)
from models.runtime import OnnxTextModel
from server.errors import InvalidInput

EMBEDDER_NAME = "minilm-embedder"
CLASSIFIER_NAME = "intent-classifier"
COSINE_FLOOR = 0.98
OOS_QUANTILE = 0.05
_ONNX_DTYPES = {1: "float32", 7: "int64"}


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Everything one build depends on."""

    repository: Path
    intents: Path | None = None
    text_col: str = "text"
    label_col: str = "intent"
    only: str | None = None
    max_length: int = 128
    source: Path | None = None
    cache_dir: Path | None = None
    # Real MiniLM must keep >= 0.98; tests building random tiny weights pass a lower floor.
    cosine_floor: float = COSINE_FLOOR
    head: HeadConfig = field(default_factory=HeadConfig)
    augment_copies: int = 2
    oos_quantile: float = OOS_QUANTILE
    seed: int = 0
    opset: int = DEFAULT_OPSET


@dataclass(frozen=True, slots=True)
class TrainedClassifier:
    """A trained head with its labels, threshold and training record."""

    layers: list[Layer]
    labels: list[str]
    threshold: float
    training: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BuildResult:
    """Published versions and how long the build took."""

    versions: list[ModelVersion]
    seconds: float


def resolve_source(options: BuildOptions) -> EncoderSource:
    return source_from_dir(options.source) if options.source else default_source()


def _graph_io(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def describe(values: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": v.name,
                "dtype": _ONNX_DTYPES.get(v.type.tensor_type.elem_type, "other"),
                "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
            }
            for v in values
        ]

    return describe(graph.input), describe(graph.output)


def _common_manifest(
    source: EncoderSource, art: EncoderArtifacts, options: BuildOptions, metrics: dict[str, Any]
) -> dict[str, Any]:
    return {
        "source": source.as_manifest(),
        "build": {**art.build, "max_length": options.max_length},
        "metrics": dict(metrics),
        "embedding_dim": art.hidden_size,
        # The int8 encoder graph both models are made of: equal hashes mean the
        # classifier's `embedding` output is the embedder's, so one pass serves both.
        "encoder_sha256": sha256_file(art.int8_path),
    }


def _stage(
    repository: ModelRepository, name: str, model: Path, art: EncoderArtifacts, max_length: int
) -> Path:
    staged = new_staging_dir(repository, name)
    shutil.copyfile(model, staged / MODEL_FILE)
    write_served_tokenizer(art.tokenizer_path, staged / TOKENIZER_FILE, max_length)
    return staged


def publish_embedder(
    repository: ModelRepository,
    source: EncoderSource,
    art: EncoderArtifacts,
    options: BuildOptions,
    metrics: dict[str, Any],
) -> ModelVersion:
    """Publish the int8 embedder graph as the next version of ``minilm-embedder``."""
    staged = _stage(repository, EMBEDDER_NAME, art.int8_path, art, options.max_length)
    inputs, outputs = _graph_io(staged / MODEL_FILE)
    manifest = _common_manifest(source, art, options, metrics)
    manifest.update({"kind": "embedder", "inputs": inputs, "outputs": outputs})
    return publish_version(repository, EMBEDDER_NAME, staged, manifest)


def train_classifier(
    art: EncoderArtifacts, data: IntentData, options: BuildOptions
) -> TrainedClassifier:
    """Embed ``data`` with the int8 encoder, cross-validate, calibrate, fit the final head."""
    labels = data.label_names
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in data.labels], dtype=np.int64)
    embedder = OnnxTextModel(art.int8_path, art.tokenizer_path, options.max_length)
    x = embedder.run(data.texts)["embedding"]
    variants, sources = typo_copies(data.texts, options.augment_copies, options.seed)
    extra = (
        embedder.run(variants)["embedding"] if variants else np.empty((0, x.shape[1]), np.float32)
    )
    cv = cross_validate(x, data.labels, labels, options.head, options.seed, extra, sources)
    threshold = oos_threshold(cv.heldout_max_prob, options.oos_quantile)
    all_x = np.vstack([x, extra])
    all_y = np.concatenate([y, y[np.asarray(sources, dtype=np.int64)]]) if sources else y
    layers = train_head(all_x, all_y, len(labels), options.head)
    training = {
        "rows": len(data.texts),
        "label_counts": data.label_counts,
        "text_col": data.text_col,
        "label_col": data.label_col,
        "data_sha256": data.sha256,
        "augmented_rows": len(variants),
        "augmentation": f"{options.augment_copies} typo'd copies per row (1-2 char edits)",
        "head": {
            "kind": options.head.kind,
            "l2": options.head.l2,
            "hidden": options.head.hidden if options.head.kind == "mlp" else None,
            "precision": "float32",
        },
        "cv_folds": cv.folds,
        "cv_accuracy": cv.accuracy,
        "cv_macro_f1": cv.macro_f1,
        "seed": options.seed,
        "drift_reference": drift_reference(x, cv.heldout_max_prob, threshold),
    }
    return TrainedClassifier(layers=layers, labels=labels, threshold=threshold, training=training)


def publish_classifier(
    repository: ModelRepository,
    source: EncoderSource,
    art: EncoderArtifacts,
    options: BuildOptions,
    metrics: dict[str, Any],
    trained: TrainedClassifier,
) -> ModelVersion:
    """Merge the head onto the int8 embedder graph and publish ``intent-classifier``."""
    import onnx

    merged = append_head(onnx.load(str(art.int8_path)), trained.layers)
    with tempfile.TemporaryDirectory(prefix="aftercare-merge-") as tmp:
        merged_path = Path(tmp) / MODEL_FILE
        onnx.save(merged, str(merged_path))
        staged = _stage(repository, CLASSIFIER_NAME, merged_path, art, options.max_length)
    inputs, outputs = _graph_io(staged / MODEL_FILE)
    manifest = _common_manifest(source, art, options, metrics)
    manifest["metrics"].update(
        cv_accuracy=trained.training["cv_accuracy"], cv_macro_f1=trained.training["cv_macro_f1"]
    )
    manifest.update(
        {
            "kind": "classifier",
            "inputs": inputs,
            "outputs": outputs,
            "labels": trained.labels,
            "oos_threshold": trained.threshold,
            "oos": {
                "rule": "out_of_scope when max(probabilities) < oos_threshold",
                "method": f"quantile {options.oos_quantile} of in-scope held-out max-probability "
                f"over {trained.training['cv_folds']}-fold cross-validation on the training file",
                "quantile": options.oos_quantile,
            },
            "training": trained.training,
        }
    )
    return publish_version(repository, CLASSIFIER_NAME, staged, manifest)


def build_models(options: BuildOptions) -> BuildResult:
    """Build the embedder and/or classifier into ``options.repository``; new versions only."""
    if options.only not in (None, "embedder", "classifier"):
        raise InvalidInput(f"--only must be embedder or classifier, not {options.only!r}")
    if not 8 <= options.max_length <= 512:
        raise InvalidInput("max_length must be between 8 and 512")
    started = time.perf_counter()
    repository = ModelRepository(options.repository)
    source = resolve_source(options)
    data = None
    if options.only != "embedder":
        # Read the training file first: a bad CSV should fail before minutes of export.
        data = load_intents(
            options.intents or default_intents_path(), options.text_col, options.label_col
        )
    versions = []
    with tempfile.TemporaryDirectory(prefix="aftercare-build-") as tmp:
        art = prepare_encoder(source, Path(tmp), options.cache_dir, options.opset)
        metrics = int8_cosine(art, options.max_length)
        check_cosine(metrics, options.cosine_floor)
        if options.only != "classifier":
            versions.append(publish_embedder(repository, source, art, options, metrics))
        if data is not None:
            trained = train_classifier(art, data, options)
            versions.append(publish_classifier(repository, source, art, options, metrics, trained))
    return BuildResult(versions=versions, seconds=time.perf_counter() - started)
