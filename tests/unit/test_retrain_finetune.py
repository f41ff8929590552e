"""``models retrain --finetune`` on the tiny random BERT and the separable keyword set.

The retrained version must come from a fine-tuned encoder (its own encoder hash), be
judged on the fine-tuning's held-out base rows against the frozen recipe on the same
rows, and record both the fine-tuning and the retrain figures in its manifest.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from models.build import CLASSIFIER_NAME, BuildOptions, build_models
from models.repository import ModelRepository
from models.retrain import LabelledExample, retrain_classifier
from server.cli import build_parser
from tests.unit.test_models_finetune import CONFIG, _rows, write_tiny_set


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildOptions:
    root = write_tiny_set(tmp_path_factory.mktemp("retrain-ft"))
    options = BuildOptions(
        repository=root / "repo", intents=root / "train.csv", source=root / "bert",
        cache_dir=root / "cache", cosine_floor=0.9, short_cosine_floor=0.9, max_length=32,
        augment_copies=0, quiet=True,
    )  # fmt: skip
    build_models(options)
    return options


def test_retrain_with_finetune_publishes_a_finetuned_version(built: BuildOptions) -> None:
    repo = ModelRepository(built.repository)
    active = repo.latest(CLASSIFIER_NAME)
    corrections = [LabelledExample(i + 1, t, y) for i, (t, y) in enumerate(_rows(7, 2))]
    options = replace(
        built, only="classifier", finetune=True, finetune_config=replace(CONFIG, threads=1)
    )
    result = retrain_classifier(options, corrections, active, weight=2)
    version = result.version
    assert version.version == active.version + 1
    training = version.manifest["training"]
    assert training["finetune"]["kept"] == "fine-tuned"
    assert training["retrain"]["heldout"] == "the fine-tuning's held-out base rows"
    assert version.manifest["encoder_sha256"] != active.manifest["encoder_sha256"]
    # Not refused: on this separable set the candidate is at least the frozen recipe.
    figures = result.figures
    assert figures["base_heldout_macro_f1"] >= figures["active_base_heldout_macro_f1"] > 0.5
    assert training["cv_folds"] == 1  # the head is calibrated on the held-out share
    version.verify()


def test_retrain_cli_takes_the_finetune_switch() -> None:
    args = build_parser().parse_args(
        ["models", "retrain", "--finetune", "--finetune-epochs", "2", "--seed", "3"]
    )
    assert args.finetune is True
    from models.cli import finetune_config_from

    config = finetune_config_from(args)
    assert config.max_epochs == 2 and config.seed == 3
