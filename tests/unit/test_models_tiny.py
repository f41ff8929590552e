"""The build pipeline end to end on a tiny random BERT (hidden 32, 2 layers), offline.

One module-scoped build exports, pools, quantizes, trains and merges; the tests check
the repository layout, the manifest, version numbering, the merged graph against numpy
references, and eval's JSON. The int8 cosine floor is relaxed to 0.9 here: random tiny
weights have no trained structure, so their quantization error says nothing about
MiniLM's (the real floor of 0.98 is checked in tests/functional/test_models_minilm.py).
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from models.build import CLASSIFIER_NAME, EMBEDDER_NAME, BuildOptions, build_models
from models.repository import ModelRepository, ModelVersion, sha256_file
from models.runtime import OnnxTextModel

WORDS = [
    "where",
    "is",
    "my",
    "order",
    "parcel",
    "package",
    "track",
    "cancel",
    "stop",
    "refund",
    "money",
    "back",
    "return",
    "please",
    "the",
    "a",
    "i",
    "want",
    "to",
    "it",
    "now",
    "thanks",
    "great",
    "love",
    "help",
]
ROWS = {
    "order_status": ["where is my order", "track my parcel", "where is the package", "track order"],
    "cancel_order": [
        "cancel my order",
        "stop the order now",
        "cancel it please",
        "i want to cancel",
    ],
    "refund_status": ["where is my refund", "my money back", "refund please", "refund my money"],
}
ROWS = {k: v + [f"{t} please" for t in v] for k, v in ROWS.items()}
FLOOR = 0.9


def _write_tiny_bert(folder: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = specials + WORDS + letters + [f"##{c}" for c in letters]
    vocab_ids = {token: i for i, token in enumerate(dict.fromkeys(vocab))}
    tokenizer = Tokenizer(models.WordPiece(vocab_ids, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab_ids["[CLS]"]), ("[SEP]", vocab_ids["[SEP]"])],
    )
    folder.mkdir(parents=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "vocab.txt").write_text("\n".join(vocab_ids) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "BertTokenizerFast", "do_lower_case": True})
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab_ids),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).eval().save_pretrained(folder)


def _write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["utterance", "label"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("tiny")
    _write_tiny_bert(root / "bert")
    _write_csv(root / "train.csv", [(t, k) for k, texts in ROWS.items() for t in texts])
    options = BuildOptions(
        repository=root / "repo",
        intents=root / "train.csv",
        text_col="utterance",
        label_col="label",
        source=root / "bert",
        cache_dir=root / "cache",
        cosine_floor=FLOOR,
        max_length=32,
        augment_copies=1,
    )
    result = build_models(options)
    return {"root": root, "options": options, "result": result}


def _repo(built: dict[str, object]) -> ModelRepository:
    options = built["options"]
    assert isinstance(options, BuildOptions)
    return ModelRepository(options.repository)


def test_layout_and_manifest(built: dict[str, object]) -> None:
    repo = _repo(built)
    assert repo.names() == [CLASSIFIER_NAME, EMBEDDER_NAME]
    for name in (EMBEDDER_NAME, CLASSIFIER_NAME):
        version = repo.latest(name)
        # Only the served int8 graph, its tokenizer and the manifest: no fp32 leftovers.
        assert sorted(p.name for p in version.path.iterdir()) == [
            "manifest.json",
            "model.onnx",
            "tokenizer.json",
        ]
        manifest = version.manifest
        for key in ("name", "version", "created_at", "files", "source", "build", "metrics"):
            assert key in manifest
        assert manifest["files"] == {
            "model.onnx": sha256_file(version.model_path),
            "tokenizer.json": sha256_file(version.tokenizer_path),
        }
        assert manifest["build"]["per_channel"] is True
        assert manifest["build"]["max_length"] == 32
        assert manifest["embedding_dim"] == 32
        assert manifest["source"]["path_name"] == "bert"
        assert manifest["metrics"]["int8_cosine_min"] >= FLOOR
        assert [i["name"] for i in manifest["inputs"]] == [
            "input_ids",
            "attention_mask",
            "token_type_ids",
        ]
        version.verify()
    classifier = repo.latest(CLASSIFIER_NAME).manifest
    assert classifier["labels"] == sorted(ROWS)
    assert 0.0 < classifier["oos_threshold"] < 1.0
    assert classifier["training"]["rows"] == 24
    assert classifier["training"]["label_counts"] == {k: 8 for k in ROWS}
    assert classifier["training"]["text_col"] == "utterance"
    assert [o["name"] for o in classifier["outputs"]] == [
        "embedding",
        "probabilities",
        "oos_score",
    ]
    assert classifier["outputs"][1]["shape"] == ["batch_size", 3]
    assert classifier["outputs"][2]["shape"] == ["batch_size"]
    oos = classifier["oos"]
    assert oos["rule"] == "out_of_scope when oos_score < oos_threshold"
    assert oos["score"] == oos["choice"]["chosen"] in ("max_prob", "margin", "centroid_cosine")
    assert set(oos["choice"]["pseudo_oos_recall"]) >= {"max_prob", "centroid_cosine"}
    # The threshold rejects about the configured quantile of held-out in-scope rows.
    assert oos["quantile"] == 0.05
    assert oos["heldout_inscope_rejected"] <= 0.05 + 1 / 24


def weights_of(version: ModelVersion) -> dict[str, np.ndarray]:
    """The head's and the out-of-scope score's constants stored in the graph."""
    return {
        init.name: onnx.numpy_helper.to_array(init)
        for init in onnx.load(str(version.model_path)).graph.initializer
        if init.name.startswith(("head/", "oos/"))
    }


def test_merged_graph_matches_embedder_and_numpy_head(built: dict[str, object]) -> None:
    repo = _repo(built)
    embedder = repo.latest(EMBEDDER_NAME)
    classifier = repo.latest(CLASSIFIER_NAME)
    texts = ["where is my order", "cancel it", "refund my money please now", "zzz unknown words"]
    plain = OnnxTextModel(embedder.model_path, embedder.tokenizer_path, 32).run_batch(texts)
    merged = OnnxTextModel(classifier.model_path, classifier.tokenizer_path, 32).run_batch(texts)
    assert plain["embedding"].shape == (4, 32)
    # Same int8 encoder graph, same batch: the merged embedding is the embedder's.
    np.testing.assert_allclose(merged["embedding"], plain["embedding"], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(merged["embedding"], axis=1), 1.0, atol=1e-5)
    probs = merged["probabilities"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # Reference: the head weights stored in the graph applied in numpy.
    weights = weights_of(classifier)
    logits = merged["embedding"] @ weights["head/w0"].T + weights["head/b0"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    # The served out-of-scope score, by the kind the manifest names.
    kind = classifier.manifest["oos"]["score"]
    if kind == "centroid_cosine":
        want = (merged["embedding"] @ weights_of(classifier)["oos/centroids"]).max(axis=1)
    else:
        top = np.sort(probs, axis=1)
        want = top[:, -1] - (top[:, -2] if kind == "margin" else 0.0)
    np.testing.assert_allclose(merged["oos_score"], want, atol=1e-5)


def test_pooling_matches_torch_reference(built: dict[str, object]) -> None:
    import torch
    from transformers import BertModel

    from models.runtime import load_tokenizer

    root = built["root"]
    assert isinstance(root, Path)
    fp32 = next((root / "cache").glob("*/embedder_fp32.onnx"))
    model = OnnxTextModel(fp32, root / "bert" / "tokenizer.json", 32)
    texts = ["track my parcel", "i want to cancel the order now please"]
    got = model.run_batch(texts)["embedding"]
    bert = BertModel.from_pretrained(root / "bert").eval()
    encodings = load_tokenizer(root / "bert" / "tokenizer.json", 32).encode_batch(texts)
    input_ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        hidden = bert(input_ids=input_ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    expected = torch.nn.functional.normalize(mean, dim=1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_rebuild_adds_versions_and_keeps_old(built: dict[str, object]) -> None:
    options = built["options"]
    assert isinstance(options, BuildOptions)
    repo = _repo(built)
    first = repo.get(CLASSIFIER_NAME, 1)
    before = (first.path / "manifest.json").read_bytes()
    result = build_models(replace(options, only="classifier"))
    assert [(v.name, v.version) for v in result.versions] == [(CLASSIFIER_NAME, 2)]
    assert repo.versions(CLASSIFIER_NAME) == [1, 2]
    assert repo.versions(EMBEDDER_NAME) == [1]
    assert (first.path / "manifest.json").read_bytes() == before
    first.verify()
    assert repo.next_version(CLASSIFIER_NAME) == 3


def test_eval_reports_oos_and_json_last_line(
    built: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from models.cli import main

    root = built["root"]
    assert isinstance(root, Path)
    test_rows = [(t, k) for k, texts in ROWS.items() for t in texts[:2]]
    test_rows += [("thanks great love", "oos"), ("help", "oos")]
    _write_csv(root / "test.csv", test_rows)
    code = main(
        [
            "eval",
            "--train", str(root / "train.csv"),
            "--test", str(root / "test.csv"),
            "--text-col", "utterance",
            "--label-col", "label",
            "--source", str(root / "bert"),
            "--cache-dir", str(root / "cache"),
            "--cosine-floor", str(FLOOR),
            "--max-length", "32",
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "per_class_f1", "confusions", "oos_recall"):
        assert key in result
    assert result["rows_test"] == 8
    assert result["oos_rows"] == 2
    assert set(result["per_class_f1"]) == set(ROWS)
    assert 0.0 <= result["inscope_accuracy"] <= result["accuracy"] <= 1.0
    scores = result["oos_scores"]
    assert scores["chosen"] in ("max_prob", "margin", "centroid_cosine", "mahalanobis")
    # The served figures name the score the build chose among those its graph computes.
    assert result["oos_score"] == result["oos_score_choice"]["chosen"]
    assert result["oos_score"] in result["oos_score_choice"]["among"]
    # Same rows, same head: the build's choice is the report's.
    assert result["oos_score_choice"]["pseudo_oos_recall"] == pytest.approx(
        scores["pseudo_oos_recall"]
    )
    assert set(scores["test_curves"]) == {"max_prob", "margin", "centroid_cosine", "mahalanobis"}
