"""Writing new model versions into the repository: stage, hash, manifest, rename.

A version is assembled in a hidden staging folder next to its final place, its files
are hashed into ``manifest.json``, and the folder is renamed to the next version number
in one step. An existing version is never written to or replaced.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.repository import (
    MANIFEST_FILE,
    MODEL_FILE,
    TOKENIZER_FILE,
    ModelRepository,
    ModelVersion,
    check_model_name,
    sha256_file,
)
from server.errors import Conflict, ModelBuildError


def new_staging_dir(repository: ModelRepository, name: str) -> Path:
    """A fresh hidden folder on the same file system as the model's versions."""
    model_dir = repository.root / check_model_name(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=model_dir))


def publish_version(
    repository: ModelRepository, name: str, staged: Path, manifest: dict[str, Any]
) -> ModelVersion:
    """Hash the staged files, write the manifest and move the folder to the next version.

    ``manifest`` holds the model-specific keys; this function adds ``name``, ``version``,
    ``created_at`` and ``files`` (every staged file but the manifest, with its sha256).
    """
    try:
        for required in (MODEL_FILE, TOKENIZER_FILE):
            if not (staged / required).is_file():
                raise ModelBuildError(f"staged {name} lacks {required}")
        files = {
            entry.name: sha256_file(entry)
            for entry in sorted(staged.iterdir())
            if entry.is_file() and entry.name != MANIFEST_FILE
        }
        version = repository.next_version(name)
        full: dict[str, Any] = {
            "name": name,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            **manifest,
        }
        (staged / MANIFEST_FILE).write_text(
            json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8"
        )
        os.chmod(staged, 0o755)  # mkdtemp makes it private; versions are world-readable
        target = staged.parent / str(version)
        if target.exists():
            raise Conflict(f"{name} version {version} already exists; not overwriting it")
        try:
            os.rename(staged, target)
        except OSError as exc:  # a concurrent build claimed the number first
            raise Conflict(f"{name} version {version} already exists; not overwriting it") from exc
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return repository.get(name, version)
