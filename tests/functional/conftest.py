"""Functional fixtures shared by modules: one server over a lifecycle model repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.harness import ServerThread
from tests.functional.lifecycle_repo import build_lifecycle_repo


@pytest.fixture(scope="session")
def lifecycle_server(server_overrides: dict, model_repository: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A real server whose classifier has extra versions (see lifecycle_repo.py)."""
    repo = build_lifecycle_repo(model_repository, tmp_path_factory.mktemp("lc") / "repo")
    models = {**server_overrides["models"], "repository": str(repo), "classifier_version": 1,
              "embedder_version": 1}
    records = {"path": str(tmp_path_factory.mktemp("lc-rec") / "records.sqlite")}
    srv = ServerThread({**server_overrides, "models": models, "records": records}).start()
    yield srv
    srv.stop()
