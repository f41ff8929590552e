"""``--finetune`` end to end on a tiny random BERT (hidden 32, 2 layers), offline.

The data are separable by one keyword per intent hidden among shared filler words: the
random encoder's mean-pooled embedding dilutes the keyword, so a head on frozen
embeddings is far from perfect, and fine-tuning must raise held-out accuracy. The
fine-tuned build must export a classifier with the same inputs and outputs as the
frozen one, and leave the embedder on the source encoder.
"""

from __future__ import annotations

import csv
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.build import CLASSIFIER_NAME, EMBEDDER_NAME, BuildOptions, build_models
from models.encoder import source_from_dir
from models.finetune import FinetuneConfig, finetune_encoder
from models.finetune_schedule import (
    WeightAverage,
    check_steps,
    layer_param_groups,
    lr_factor,
    pair_batches,
)
from models.repository import ModelRepository
from models.runtime import OnnxTextModel
from tests.unit.test_models_tiny import WORDS, _write_tiny_bert

KEYWORDS = {"track": "order_status", "cancel": "cancel_order", "refund": "refund_status",
            "love": "praise"}
FILLER = [w for w in WORDS if w not in KEYWORDS]
FILLER_WORDS = 12
CONFIG = FinetuneConfig(
    max_epochs=7, pairs_per_batch=8, learning_rate=5e-4, head_learning_rate=1e-2,
    max_length=16, heldout_share=0.25, checks_per_epoch=1, patience=4, max_minutes=2.0,
    threads=2, seed=0,
    # A random tiny encoder has no useful word vectors to keep; MiniLM's stay frozen.
    freeze_word_embeddings=False,
)  # fmt: skip


def _rows(seed: int, per_intent: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for word, intent in KEYWORDS.items():
        for _ in range(per_intent):
            words = rng.choices(FILLER, k=FILLER_WORDS)
            words.insert(rng.randrange(len(words) + 1), word)
            rows.append((" ".join(words), intent))
    return rows


def write_tiny_set(root: Path) -> Path:
    """The tiny BERT at ``root/bert`` and the keyword set at ``root/train.csv``."""
    _write_tiny_bert(root / "bert")
    with (root / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "intent"])
        writer.writerows(_rows(0, 32))
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_set(tmp_path_factory.mktemp("finetune"))


def test_finetune_improves_heldout_accuracy(tiny: Path) -> None:
    rows = _rows(0, 32)
    result = finetune_encoder(
        source_from_dir(tiny / "bert"),
        [t for t, _ in rows],
        [y for _, y in rows],
        tiny / "tuned",
        CONFIG,
    )
    record = result.record
    assert result.improved and record["kept"] == "fine-tuned"
    # Measured: frozen 0.875, fine-tuned 0.969 on the 32 held-out rows.
    assert record["best_heldout_accuracy"] >= record["frozen_heldout_accuracy"] + 0.05
    assert record["best_heldout_accuracy"] >= 0.9
    assert len(result.heldout_rows) == record["heldout_rows"] == 32
    assert (tiny / "tuned" / "config.json").is_file()
    assert (tiny / "tuned" / "tokenizer.json").is_file()


def test_finetuned_build_keeps_graph_outputs(tiny: Path) -> None:
    options = BuildOptions(
        repository=tiny / "repo",
        intents=tiny / "train.csv",
        source=tiny / "bert",
        cache_dir=tiny / "cache",
        cosine_floor=0.9,
        short_cosine_floor=0.9,
        max_length=32,
        augment_copies=1,
        quiet=True,
    )
    build_models(options)
    build_models(replace(options, only="classifier", finetune=True, finetune_config=CONFIG))
    repo = ModelRepository(options.repository)
    frozen, tuned = repo.get(CLASSIFIER_NAME, 1), repo.get(CLASSIFIER_NAME, 2)
    embedder = repo.latest(EMBEDDER_NAME)
    assert tuned.manifest["training"]["finetune"]["kept"] == "fine-tuned"
    assert tuned.manifest["inputs"] == frozen.manifest["inputs"]
    assert tuned.manifest["outputs"] == frozen.manifest["outputs"]
    assert tuned.manifest["build"]["per_channel"] is True
    # A different encoder: Respond must not reuse this classifier's embedding for search.
    assert tuned.manifest["encoder_sha256"] != embedder.manifest["encoder_sha256"]
    assert tuned.manifest["training"]["cv_folds"] == 1  # the fine-tuning held-out share
    tuned.verify()
    held = _rows(1, 16)  # fresh rows of the same intents
    correct = {}
    for version in (frozen, tuned):
        out = OnnxTextModel(version.model_path, version.tokenizer_path, 32).run(
            [t for t, _ in held]
        )
        assert set(out) == {"embedding", "probabilities", "oos_score"}
        assert out["probabilities"].shape == (len(held), len(KEYWORDS))
        guess = [version.labels[i] for i in out["probabilities"].argmax(axis=1)]
        correct[version.version] = sum(g == y for g, (_, y) in zip(guess, held, strict=True))
    assert correct[2] >= correct[1], correct


def test_lr_factor_warms_up_then_decays_to_zero() -> None:
    assert lr_factor(0.0, 0.1, True) == 0.0
    assert lr_factor(0.05, 0.1, True) == pytest.approx(0.5)
    assert lr_factor(0.1, 0.1, True) == pytest.approx(1.0)
    assert lr_factor(0.55, 0.1, True) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1, True) == 0.0
    assert lr_factor(1.5, 0.1, True) == 0.0  # past the time cap: clamped, never negative
    assert lr_factor(0.7, 0.0, False) == 1.0  # the constant schedule


def test_layer_param_groups_decay_downwards(tiny: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(tiny / "bert"), local_files_only=True)
    model.get_input_embeddings().weight.requires_grad_(False)
    groups = layer_param_groups(model, 1e-3, 0.5)
    by_depth = {g["depth"]: g for g in groups}
    n = model.config.num_hidden_layers
    assert sorted(by_depth) == list(range(n + 1))  # pooler and top layer at 0 ... embeddings
    for depth, group in by_depth.items():
        assert group["lr"] == pytest.approx(1e-3 * 0.5**depth)
    top = {id(p) for p in model.encoder.layer[n - 1].parameters()}
    assert top <= {id(p) for p in by_depth[0]["params"]}
    bottom = {id(p) for p in model.encoder.layer[0].parameters()}
    assert bottom == {id(p) for p in by_depth[n - 1]["params"]}
    embeddings = {id(p) for p in by_depth[n]["params"]}
    assert id(model.embeddings.position_embeddings.weight) in embeddings
    assert id(model.get_input_embeddings().weight) not in embeddings  # frozen: left out
    grouped = sum(len(g["params"]) for g in groups)
    assert grouped == sum(1 for p in model.parameters() if p.requires_grad)


def test_length_bucketed_batches_keep_pairs_and_cut_padding() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(20), 40)
    lengths = rng.integers(3, 30, size=len(y))
    plain = pair_batches(y, 16, np.random.default_rng(1))
    bucketed = pair_batches(y, 16, np.random.default_rng(1), lengths)
    for batches in (plain, bucketed):
        rows = np.concatenate(batches)
        assert sorted(rows.tolist()) == list(range(len(y)))  # every row once (even classes)
        for batch in batches:  # consecutive rows are a same-intent pair
            assert (y[batch[0::2]] == y[batch[1::2]]).all()

    def padded(batches: list[np.ndarray]) -> int:
        return sum(int(lengths[b].max()) * len(b) for b in batches)

    # Measured 0.75: a batch still pads to its longest pair, and pairs are random.
    assert padded(bucketed) < 0.8 * padded(plain)
    # Sorted within windows, but the batch order is shuffled: not monotone in length.
    longest = [int(lengths[b].max()) for b in bucketed]
    assert longest != sorted(longest)


def test_check_steps_spaced_and_ending_the_epoch() -> None:
    assert check_steps(267, 2) == {134, 267}  # not 133, 266 and 267
    assert check_steps(264, 2) == {132, 264}
    assert check_steps(10, 1) == {10}
    assert check_steps(3, 5) == {1, 2, 3}


def test_weight_average_means_floats_and_keeps_the_rest() -> None:
    import torch

    average = WeightAverage()
    for k in (1.0, 2.0, 6.0):
        average.add({"w": torch.full((2, 2), k), "ids": torch.tensor([int(k)])})
    like = {"w": torch.zeros(2, 2), "ids": torch.tensor([0])}
    mean = average.mean(like)
    assert average.count == 3
    assert torch.equal(mean["w"], torch.full((2, 2), 3.0)) and mean["w"].dtype == torch.float32
    assert torch.equal(mean["ids"], torch.tensor([6]))  # integer buffers: the last, not a mean
