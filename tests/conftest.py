"""Shared fixtures: the repo root, the default model repository, shared data paths."""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis  # noqa: F401  imported while single-threaded, see below
import pytest

# CPython 3.11.7 can fail ast.parse ("AST constructor recursion depth mismatch") when
# two threads build ASTs at once; pytest rewrites lazily imported plugin modules with
# ast.parse, so a late first import of hypothesis while a test server thread compiles
# code hit it once. Importing it here, before any server starts, avoids the race.

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("AFTERCARE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def model_repository() -> Path:
    """The default models (intent classifier + embedder), built once if missing."""
    from models.cli import ensure_default_models

    repo = ROOT / "models" / "repository"
    ensure_default_models(repo)
    return repo


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set AFTERCARE_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def server_overrides(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Config for a test server: real models, the demo shop, state in a session tmp dir."""
    base = tmp_path_factory.mktemp("aftercare")
    return {
        "models": {"repository": str(model_repository)},
        "data": {"demo_dir": str(base / "demo"), "quarantine_dir": str(base / "quarantine"),
                 "use_shared": False},
        "retrieval": {"index_dir": str(base / "index")},
        "records": {"path": str(base / "records.sqlite")},
        # Admission by expected queue wait depends on this machine's speed at the time;
        # functional tests that are not about it must not be shed by a busy CI machine.
        # (tests/unit/test_batcher.py and `aftercare bench burst` cover admission.)
        "classifier_batcher": {"max_queue_time_ms": 0},
        "embedder_batcher": {"max_queue_time_ms": 0},
        "metrics": {"port": 0},  # off: test servers must not all bind the default port
    }


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """A throwaway PostgreSQL cluster for the session (tests/pg.py); skips only when no
    PostgreSQL binaries exist on this machine."""
    from tests.pg import running_cluster

    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """`records.url` of an empty record database, on each backend: the one store suite
    runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    cluster = request.getfixturevalue("pg_cluster")
    return str(cluster.create_database())
