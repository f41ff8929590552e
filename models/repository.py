"""Read-only view of the on-disk model repository (Triton style layout).

Layout: ``<root>/<model-name>/<version>/`` holding ``model.onnx``, ``tokenizer.json`` and
``manifest.json``; versions are positive integers and are never overwritten. A version
folder counts only once its ``manifest.json`` exists: the builder writes a version into a
hidden temporary folder and renames it into place, so readers never see half a version.

This is the one module of ``models/`` the running server imports, so it uses the
standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.errors import DataError, InvalidInput, NotFound

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

# Names become folder names: keep them to a safe alphabet so no name escapes the root.
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_HASH_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise InvalidInput."""
    if not _NAME_RE.match(name):
        raise InvalidInput(f"invalid model name {name!r}: use [a-z0-9_.-], starting alphanumeric")
    return name


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One published, immutable version of a model and its manifest."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]
    model_path: Path
    tokenizer_path: Path

    @property
    def labels(self) -> tuple[str, ...]:
        """Class labels (index = probabilities column); empty for an embedder."""
        return tuple(self.manifest.get("labels", ()))

    @property
    def oos_threshold(self) -> float | None:
        """Max-probability floor below which a prediction is out of scope, if calibrated."""
        value = self.manifest.get("oos_threshold")
        return None if value is None else float(value)

    @property
    def max_length(self) -> int:
        """Token truncation length the model was built and checked with."""
        return int(self.manifest.get("build", {}).get("max_length", 128))

    def verify(self) -> None:
        """Check every file listed in the manifest against its sha256; raise DataError."""
        files = self.manifest.get("files")
        if not isinstance(files, dict) or not files:
            raise DataError(f"{self.name} v{self.version}: manifest lists no files")
        for required in (MODEL_FILE, TOKENIZER_FILE):
            if required not in files:
                raise DataError(f"{self.name} v{self.version}: manifest does not list {required}")
        for filename, expected in files.items():
            file_path = self.path / filename
            if not file_path.is_file():
                raise DataError(f"{self.name} v{self.version}: missing file {filename}")
            actual = sha256_file(file_path)
            if actual != expected:
                raise DataError(
                    f"{self.name} v{self.version}: sha256 mismatch for {filename} "
                    f"(manifest {expected[:12]}..., file {actual[:12]}...)"
                )


class ModelRepository:
    """Lists and opens model versions under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        """Model names that have at least one published version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and _NAME_RE.match(entry.name) and self.versions(entry.name)
        )

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name`` in ascending order; empty for an unknown name."""
        model_dir = self.root / check_model_name(name)
        if not model_dir.is_dir():
            return []
        found = []
        for entry in model_dir.iterdir():
            # Only decimal folder names count; "007" would alias version 7, so skip it.
            if (
                entry.is_dir()
                and entry.name.isdigit()
                and entry.name == str(int(entry.name))
                and int(entry.name) > 0
                and (entry / MANIFEST_FILE).is_file()
            ):
                found.append(int(entry.name))
        return sorted(found)

    def next_version(self, name: str) -> int:
        """The version number a new build of ``name`` gets (one past the highest folder)."""
        model_dir = self.root / check_model_name(name)
        highest = 0
        if model_dir.is_dir():
            # Count incomplete numeric folders too, so a crashed build's number is not reused.
            for entry in model_dir.iterdir():
                if entry.is_dir() and entry.name.isdigit():
                    highest = max(highest, int(entry.name))
        return highest + 1

    def latest(self, name: str) -> ModelVersion:
        """The highest published version of ``name``; NotFound if there is none."""
        versions = self.versions(name)
        if not versions:
            raise NotFound(f"model {name!r} has no version in {self.root}")
        return self.get(name, versions[-1])

    def get(self, name: str, version: int) -> ModelVersion:
        """One published version; NotFound if absent, DataError if its manifest is unreadable."""
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise NotFound(f"model {name!r} has no version {version!r}")
        version_dir = self.root / check_model_name(name) / str(version)
        manifest_path = version_dir / MANIFEST_FILE
        if not manifest_path.is_file():
            raise NotFound(f"model {name!r} has no version {version}")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{name} v{version}: unreadable manifest ({exc})") from exc
        if not isinstance(manifest, dict):
            raise DataError(f"{name} v{version}: manifest is not a JSON object")
        if manifest.get("name") != name or manifest.get("version") != version:
            raise DataError(f"{name} v{version}: manifest names another model or version")
        return ModelVersion(
            name=name,
            version=version,
            path=version_dir,
            manifest=manifest,
            model_path=version_dir / MODEL_FILE,
            tokenizer_path=version_dir / TOKENIZER_FILE,
        )
