"""The model repository reader and the version publisher, on hand-made versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.publish import new_staging_dir, publish_version
from models.repository import ModelRepository, sha256_file
from server.errors import DataError, InvalidInput, NotFound


def _publish(repo: ModelRepository, name: str, payload: bytes) -> int:
    staged = new_staging_dir(repo, name)
    (staged / "model.onnx").write_bytes(payload)
    (staged / "tokenizer.json").write_text("{}")
    return publish_version(repo, name, staged, {"embedding_dim": 4}).version


def test_publish_numbers_versions_and_writes_manifest(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    assert repo.versions("emb") == []
    assert repo.next_version("emb") == 1
    assert [_publish(repo, "emb", b"a"), _publish(repo, "emb", b"b")] == [1, 2]
    version = repo.latest("emb")
    assert version.version == 2
    assert version.model_path.read_bytes() == b"b"
    manifest = json.loads((version.path / "manifest.json").read_text())
    assert manifest["name"] == "emb" and manifest["version"] == 2
    assert manifest["created_at"].endswith("+00:00")
    assert manifest["files"]["model.onnx"] == sha256_file(version.model_path)
    assert manifest["embedding_dim"] == 4
    # Staging folders are gone once published.
    assert sorted(p.name for p in (tmp_path / "emb").iterdir()) == ["1", "2"]
    version.verify()


def test_unknown_name_and_version_are_not_found(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    _publish(repo, "emb", b"a")
    with pytest.raises(NotFound):
        repo.latest("nope")
    with pytest.raises(NotFound):
        repo.get("emb", 2)
    with pytest.raises(NotFound):
        repo.get("emb", 0)
    with pytest.raises(InvalidInput):
        repo.get("../etc", 1)
    assert repo.names() == ["emb"]


def test_incomplete_and_odd_folders_are_ignored(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    _publish(repo, "emb", b"a")
    (tmp_path / "emb" / "5").mkdir()  # a crashed build: no manifest
    (tmp_path / "emb" / "007").mkdir()
    (tmp_path / "emb" / "latest").mkdir()
    new_staging_dir(repo, "emb")
    assert repo.versions("emb") == [1]
    assert repo.latest("emb").version == 1
    # A crashed build's number is not reused.
    assert repo.next_version("emb") == 8


def test_verify_catches_tampering_and_missing_files(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    _publish(repo, "emb", b"weights")
    version = repo.latest("emb")
    version.verify()
    version.model_path.write_bytes(b"weightz")
    with pytest.raises(DataError, match=r"sha256 mismatch for model\.onnx"):
        version.verify()
    version.model_path.write_bytes(b"weights")
    version.tokenizer_path.unlink()
    with pytest.raises(DataError, match=r"missing file tokenizer\.json"):
        version.verify()


def test_bad_manifest_is_a_data_error(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    _publish(repo, "emb", b"a")
    manifest = tmp_path / "emb" / "1" / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(DataError):
        repo.get("emb", 1)
    manifest.write_text(json.dumps({"name": "other", "version": 1}))
    with pytest.raises(DataError, match="another model"):
        repo.get("emb", 1)


def test_publish_refuses_incomplete_staging(tmp_path: Path) -> None:
    repo = ModelRepository(tmp_path)
    staged = new_staging_dir(repo, "emb")
    (staged / "model.onnx").write_bytes(b"a")
    with pytest.raises(Exception, match=r"lacks tokenizer\.json"):
        publish_version(repo, "emb", staged, {})
    assert not staged.exists()
    assert repo.versions("emb") == []


def test_reader_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, models.repository; "
        "heavy = {'numpy', 'torch', 'onnx', 'onnxruntime', 'optimum', 'tokenizers'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
