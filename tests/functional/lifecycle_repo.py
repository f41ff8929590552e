"""A throwaway model repository for lifecycle tests, built from the default models.

Files are symlinked, never copied, so extra versions cost nothing:
- minilm-embedder v1, v2 and intent-classifier v1, v2: the default models under two
  version numbers each;
- v3: the same graph with its labels permuted, i.e. what training on consistently
  shuffled labels gives: a deliberately bad candidate that disagrees with v1;
- v4: model.onnx replaced by bytes that are not ONNX (checksum in the manifest
  matches them, so the failure comes from opening the model);
- v5: model.onnx truncated while the manifest keeps the original checksum;
- v6: a manifest with one label fewer than the graph's outputs (wrong outputs).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

CLASSIFIER = "intent-classifier"
EMBEDDER = "minilm-embedder"
SHUFFLED = 3
NOT_ONNX = 4
TRUNCATED = 5
WRONG_LABELS = 6


def _link_version(src: Path, dst: Path, name: str, version: int,
                  labels: list[str] | None = None) -> dict:
    dst.mkdir(parents=True)
    manifest = json.loads((src / "manifest.json").read_text())
    for entry in src.iterdir():
        if entry.name != "manifest.json":
            (dst / entry.name).symlink_to(entry.resolve())
    manifest["name"], manifest["version"] = name, version
    if labels is not None:
        manifest["labels"] = labels
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def _write_model(dst: Path, data: bytes, manifest: dict, keep_checksum: bool) -> None:
    target = dst / "model.onnx"
    target.unlink()
    target.write_bytes(data)
    if not keep_checksum:
        manifest["files"]["model.onnx"] = hashlib.sha256(data).hexdigest()
    (dst / "manifest.json").write_text(json.dumps(manifest))


def build_lifecycle_repo(source: Path, root: Path) -> Path:
    src_cls = source / CLASSIFIER / "1"
    _link_version(source / EMBEDDER / "1", root / EMBEDDER / "1", EMBEDDER, 1)
    _link_version(source / EMBEDDER / "1", root / EMBEDDER / "2", EMBEDDER, 2)
    base = _link_version(src_cls, root / CLASSIFIER / "1", CLASSIFIER, 1)
    _link_version(src_cls, root / CLASSIFIER / "2", CLASSIFIER, 2)
    labels = list(base["labels"])
    shuffled, rng = labels[:], random.Random(3)
    while any(a == b for a, b in zip(shuffled, labels, strict=True)):  # a derangement
        rng.shuffle(shuffled)
    _link_version(src_cls, root / CLASSIFIER / str(SHUFFLED), CLASSIFIER, SHUFFLED, shuffled)
    m4 = _link_version(src_cls, root / CLASSIFIER / str(NOT_ONNX), CLASSIFIER, NOT_ONNX)
    _write_model(root / CLASSIFIER / str(NOT_ONNX), b"not an onnx model" * 64, m4, False)
    m5 = _link_version(src_cls, root / CLASSIFIER / str(TRUNCATED), CLASSIFIER, TRUNCATED)
    head = (src_cls / "model.onnx").read_bytes()[:4096]
    _write_model(root / CLASSIFIER / str(TRUNCATED), head, m5, True)
    _link_version(src_cls, root / CLASSIFIER / str(WRONG_LABELS), CLASSIFIER, WRONG_LABELS,
                  labels[:-1])
    return root
