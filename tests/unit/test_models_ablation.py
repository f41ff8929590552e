"""``models ablate`` on the tiny random BERT: every variant scored, runs reused, mixes exact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.ablation import AblationPlan, ablate, mix_weights, run_configs
from models.encoder import source_from_dir
from models.intent_data import IntentData
from tests.unit.test_models_finetune import CONFIG, _rows
from tests.unit.test_models_tiny import _write_tiny_bert


def _data(seed: int, per_intent: int) -> IntentData:
    rows = _rows(seed, per_intent)
    return IntentData(
        texts=tuple(t for t, _ in rows),
        labels=tuple(y for _, y in rows),
        text_col="text",
        label_col="intent",
        sha256="",
    )


def test_run_configs_share_one_split_and_refit_never_stops_early() -> None:
    runs = run_configs(replace(CONFIG, seed=5), AblationPlan(seeds=3, refit_share=0.05))
    assert list(runs) == ["seed-0", "seed-1", "seed-2", "refit"]
    assert [runs[f"seed-{k}"].seed for k in range(3)] == [5, 6, 7]
    assert {cfg.split_seed for cfg in runs.values()} == {5}
    assert runs["refit"].heldout_share == 0.05 and runs["refit"].patience > 10**5
    assert "refit" not in run_configs(CONFIG, AblationPlan(seeds=1, refit_share=0.0))


def test_mix_weights_is_the_weighted_sum_of_float_tensors() -> None:
    import torch

    a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([1, 2])}
    b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([7, 7])}
    mixed = mix_weights([a, b], [0.25, 0.75])
    assert torch.allclose(mixed["w"], torch.tensor([2.5, 5.0]))
    assert torch.equal(mixed["ids"], a["ids"])  # integer buffers are not averaged
    with pytest.raises(ValueError):
        mix_weights([a, b], [1.0])


def test_ablate_scores_every_variant_and_reuses_runs(tmp_path: Path) -> None:
    _write_tiny_bert(tmp_path / "bert")
    source = source_from_dir(tmp_path / "bert")
    data, test = _data(0, 32), _data(1, 16)
    plan = AblationPlan(seeds=2, refit_share=0.1, alphas=(0.5,), max_length=16)
    work = tmp_path / "work"
    messages: list[str] = []
    config = replace(CONFIG, max_epochs=4, threads=1)
    result = ablate(source, data, test, config, plan, work, messages.append)
    names = [v["name"] for v in result["variants"]]
    assert names == ["original", "seed-0", "seed-1", "refit", "soup", "wise-0.5", "ensemble"]
    by_name = {v["name"]: v for v in result["variants"]}
    assert by_name["ensemble"]["encoders"] == 2 and by_name["soup"]["encoders"] == 1
    assert by_name["refit"]["heldout_trained_on"] is True
    for row in result["variants"]:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 <= row["heldout_accuracy"] <= 1.0
    # The separable set: fine-tuning beats the frozen random encoder on fresh rows.
    assert by_name["seed-0"]["test_accuracy"] > by_name["original"]["test_accuracy"]
    assert result["heldout_rows"] == 32  # 25% of 128 rows, one split for every seed
    assert messages[0] == "ablate: 0 run(s) reused, 3 to fine-tune"
    # Same settings again: nothing is fine-tuned, the figures are the same.
    again: list[str] = []
    second = ablate(source, data, test, config, plan, work, again.append)
    assert again[0].startswith("ablate: 3 run(s) reused, 0 to fine-tune")
    assert np.allclose(
        [v["test_accuracy"] for v in second["variants"]],
        [v["test_accuracy"] for v in result["variants"]],
    )
