"""Building the served models: the int8 sentence embedder and the merged intent classifier.

One encoder preparation (export validated against torch, pooling, per-channel int8,
cosine gate) feeds both. The classifier's head is trained on embeddings from the same
int8 graph it is merged onto, so training and serving see identical features; the head,
its temperature and its out-of-scope threshold come from held-out folds of the training
file alone (models/train.py). With ``finetune`` the classifier's encoder is fine-tuned
on the intent data first (models/finetune.py) and exported the same way; the embedder
stays on the source encoder. Progress lines go to the console, details to a build log.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.buildlog import BuildLog, build_log
from models.encoder import (
    DEFAULT_OPSET,
    SHORT_COSINE_FLOOR,
    EncoderArtifacts,
    EncoderSource,
    check_cosine,
    cosine_gate,
    default_source,
    int8_cosine,
    prepare_encoder,
    source_from_dir,
    write_served_tokenizer,
)
from models.finetune import FinetuneConfig, finetune_encoder
from models.graph import append_head, append_oos_score
from models.head import HeadConfig
from models.intent_data import IntentData, default_intents_path, load_intents
from models.publish import new_staging_dir, publish_version
from models.repository import (
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelRepository,
    ModelVersion,
    sha256_file,
)
from models.train import TrainedClassifier, train_classifier
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
    short_cosine_floor: float = SHORT_COSINE_FLOOR
    head: HeadConfig = field(default_factory=HeadConfig)
    augment_copies: int = 2
    oos_quantile: float = OOS_QUANTILE
    # Rows with this label in the training file are out-of-scope examples: not a class,
    # they set the threshold. Absent in the deployment case (threshold by oos_quantile).
    oos_label: str = "oos"
    seed: int = 0
    opset: int = DEFAULT_OPSET
    # Fine-tune the classifier's encoder on the intent data first (the embedder, used
    # for retrieval, stays the source encoder). See models/finetune.py.
    finetune: bool = False
    finetune_config: FinetuneConfig = field(default_factory=FinetuneConfig)
    quiet: bool = False  # no progress lines on the console (the build log still has them)


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
        "build": {
            **art.build,
            "max_length": options.max_length,
            "cosine_gate": cosine_gate(options.cosine_floor, options.short_cosine_floor),
        },
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
    run_info: dict[str, Any] | None = None,
) -> ModelVersion:
    """Publish the int8 embedder graph as the next version of ``minilm-embedder``."""
    staged = _stage(repository, EMBEDDER_NAME, art.int8_path, art, options.max_length)
    inputs, outputs = _graph_io(staged / MODEL_FILE)
    manifest = _common_manifest(source, art, options, metrics)
    manifest["build"].update(run_info or {})
    manifest.update({"kind": "embedder", "inputs": inputs, "outputs": outputs})
    return publish_version(repository, EMBEDDER_NAME, staged, manifest)


def publish_classifier(
    repository: ModelRepository,
    source: EncoderSource,
    art: EncoderArtifacts,
    options: BuildOptions,
    metrics: dict[str, Any],
    trained: TrainedClassifier,
    run_info: dict[str, Any] | None = None,
) -> ModelVersion:
    """Merge the head onto the int8 embedder graph and publish ``intent-classifier``."""
    import onnx

    merged = append_oos_score(
        append_head(onnx.load(str(art.int8_path)), trained.layers),
        trained.oos_score,
        trained.centroids,
    )
    with tempfile.TemporaryDirectory(prefix="aftercare-merge-") as tmp:
        merged_path = Path(tmp) / MODEL_FILE
        onnx.save(merged, str(merged_path))
        staged = _stage(repository, CLASSIFIER_NAME, merged_path, art, options.max_length)
    inputs, outputs = _graph_io(staged / MODEL_FILE)
    manifest = _common_manifest(source, art, options, metrics)
    manifest["build"].update(run_info or {})
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
            "oos": trained.oos,
            "training": trained.training,
        }
    )
    return publish_version(repository, CLASSIFIER_NAME, staged, manifest)


def finetuned_classifier_encoder(
    source: EncoderSource, data: IntentData, options: BuildOptions, tmp: Path, log: BuildLog
) -> tuple[EncoderSource, npt.NDArray[np.int64] | None, dict[str, Any]]:
    """Fine-tune on the in-scope rows; the source to export, fold assignment, record."""
    rows = [i for i, label in enumerate(data.labels) if label != options.oos_label]
    result = finetune_encoder(
        source,
        [data.texts[i] for i in rows],
        [data.labels[i] for i in rows],
        tmp / "finetuned",
        options.finetune_config,
        log,
    )
    log(f"fine-tune: kept {result.record['kept']} in {result.record['seconds']:.0f}s")
    if not result.improved:
        return source, None, result.record
    # The head is chosen and calibrated on the rows the encoder never trained on.
    assignment = np.full(len(data.labels), -1, dtype=np.int64)
    assignment[np.asarray(rows, dtype=np.int64)[result.heldout_rows]] = 0
    return result.source, assignment, result.record


def _encoder(
    source: EncoderSource, work: Path, cache: Path | None, options: BuildOptions, log: BuildLog
) -> tuple[EncoderArtifacts, dict[str, Any]]:
    art = prepare_encoder(source, work, cache, options.opset, log)
    metrics = int8_cosine(art, options.max_length)
    check_cosine(metrics, options.cosine_floor, options.short_cosine_floor)
    log(
        f"validate: int8 vs fp32 cosine min {metrics['int8_cosine_min']:.4f} "
        f"(floor {options.cosine_floor}), short inputs min "
        f"{metrics['int8_cosine_short_min']:.4f} (floor {options.short_cosine_floor})"
    )
    return art, metrics


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
    with (
        build_log(repository.root, options.quiet) as log,
        tempfile.TemporaryDirectory(prefix="aftercare-build-") as tmp_name,
    ):
        tmp = Path(tmp_name)

        def run_info() -> dict[str, Any]:
            return {
                "seconds": round(time.perf_counter() - started, 2),
                "machine": machine_info(),
                "log_file": str(log.path),
            }

        log(f"building into {repository.root}; details in {log.path}")
        art, metrics = _encoder(source, tmp, options.cache_dir, options, log)
        if options.only != "classifier":
            version = publish_embedder(repository, source, art, options, metrics, run_info())
            log(f"published {version.name} v{version.version}")
            versions.append(version)
        if data is not None:
            cls_source, assignment, record = source, None, None
            if options.finetune:
                cls_source, assignment, record = finetuned_classifier_encoder(
                    source, data, options, tmp, log
                )
            if cls_source is not source:
                # A fine-tuned encoder: exported fresh (never cached), gated the same way.
                art, metrics = _encoder(cls_source, tmp / "tuned", None, options, log)
            trained = train_classifier(art, data, options, assignment, log)
            if record is not None:
                trained.training["finetune"] = record
            version = publish_classifier(
                repository, cls_source, art, options, metrics, trained, run_info()
            )
            log(
                f"published {version.name} v{version.version}: held-out accuracy "
                f"{trained.training['cv_accuracy']:.4f}, oos_threshold {trained.threshold:.3f}"
            )
            versions.append(version)
    return BuildResult(versions=versions, seconds=time.perf_counter() - started)


def machine_info() -> dict[str, Any]:
    """What the build time was measured on."""
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
