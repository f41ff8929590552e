"""``models ablate``: what the usual ways past one fine-tuning run are worth on your data.

Fine-tuning (models/finetune.py) is run ``seeds`` times on the same held-out split (the
runs differ only in batch order and the linear probe's start), and once more on all but
``refit_share`` of the training rows (the usual refit after model selection). Every
encoder below is then scored the same way: fp32 mean-pooled embeddings in torch, and a
logistic-regression head whose L2 is picked on the held-out rows, refitted on all
training rows, scored on the test file.

- ``original``: the encoder before fine-tuning (the frozen-embedding baseline);
- ``seed-k``: each run alone;
- ``refit``: the run on nearly all rows (its held-out figure is not a held-out figure);
- ``soup``: the uniform mean of the seeded runs' weights (a "model soup", Wortsman et
  al. 2022): one encoder, the serving cost of one;
- ``wise-<alpha>``: ``alpha`` x the first run + (1 - alpha) x the original weights
  (WiSE-FT, Wortsman et al. 2022), also one encoder;
- ``ensemble``: the mean of the seeded runs' probabilities, ``seeds`` encoders per
  message: the bound a soup or distillation into one encoder could hope to approach.

Nothing is published; the run folders under ``work`` are reused when their settings
match, so a long comparison can be resumed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.encoder import EncoderSource
from models.finetune import FinetuneConfig, finetune_encoder
from models.head import HeadConfig, predict_proba, train_head
from models.head_select import L2_GRID
from models.intent_data import IntentData
from models.metrics import accuracy, macro_f1, stratified_split

FloatArray = npt.NDArray[np.float32]
RUN_RECORD = "ablation-run.json"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AblationPlan:
    """What to compare."""

    seeds: int = 3
    refit_share: float = 0.02
    alphas: tuple[float, ...] = (0.5, 0.75)
    jobs: int = 1  # fine-tuning runs at once, each in its own process
    max_length: int = 64  # tokens when scoring


def run_configs(base: FinetuneConfig, plan: AblationPlan) -> dict[str, FinetuneConfig]:
    """The fine-tuning runs: seeds on one split, then the refit (no early stop)."""
    split = base.seed if base.split_seed is None else base.split_seed
    runs = {
        f"seed-{k}": replace(base, seed=base.seed + k, split_seed=split)
        for k in range(plan.seeds)
    }
    if plan.refit_share > 0:
        runs["refit"] = replace(
            base, heldout_share=plan.refit_share, patience=10**6, split_seed=split
        )
    return runs


def mix_weights(
    states: Sequence[Mapping[str, Any]], weights: Sequence[float]
) -> dict[str, Any]:
    """The weighted sum of state dicts' floating tensors; others come from the first."""
    if len(states) != len(weights) or not states:
        raise ValueError("need one weight per state dict, and at least one")
    mixed = {}
    for key, first in states[0].items():
        if first.dtype.is_floating_point:
            mixed[key] = sum(w * s[key] for s, w in zip(states, weights, strict=True))
        else:
            mixed[key] = first
    return mixed


def _finetune_job(job: tuple[str, str, list[str], list[str], str, dict[str, Any]]) -> str:
    """One run in a worker process; writes ``RUN_RECORD`` beside the model folder."""
    name, source_path, texts, labels, out, config = job
    from models.encoder import source_from_dir

    out_dir = Path(out)
    result = finetune_encoder(
        source_from_dir(Path(source_path)), texts, labels, out_dir, FinetuneConfig(**config)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    record = dict(result.record, improved=result.improved)
    (out_dir / RUN_RECORD).write_text(json.dumps(record, indent=2))
    return name


def _reusable(out_dir: Path, config: FinetuneConfig) -> dict[str, Any] | None:
    path = out_dir / RUN_RECORD
    if not path.is_file():
        return None
    record: dict[str, Any] = json.loads(path.read_text())
    return record if record.get("config") == asdict(config) else None


def _finetune_all(
    source: EncoderSource,
    data: IntentData,
    runs: Mapping[str, FinetuneConfig],
    work: Path,
    jobs: int,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    todo = [name for name, cfg in runs.items() if _reusable(work / name, cfg) is None]
    progress(f"ablate: {len(runs) - len(todo)} run(s) reused, {len(todo)} to fine-tune")
    payload = [
        (name, str(source.path), list(data.texts), list(data.labels), str(work / name),
         asdict(runs[name]))
        for name in todo
    ]  # fmt: skip
    if jobs <= 1:
        for job in payload:
            progress(f"ablate: fine-tuning {_finetune_job(job)} done")
    else:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            for name in pool.map(_finetune_job, payload):
                progress(f"ablate: fine-tuning {name} done")
    records = {}
    for name, cfg in runs.items():
        record = _reusable(work / name, cfg)
        if record is None:
            raise RuntimeError(f"run {name} left no record in {work / name}")
        records[name] = record
    return records


class _Scorer:
    """Embeds with any weights of the source encoder; a head per encoder, L2 by held-out."""

    def __init__(self, source: EncoderSource, data: IntentData, test: IntentData,
                 held_rows: npt.NDArray[np.int64], max_length: int) -> None:
        from models.finetune import TorchEncoder

        self.encoder = TorchEncoder(source.path, max_length)
        self.original = {k: v.clone() for k, v in self.encoder.model.state_dict().items()}
        self.names = sorted(set(data.labels))
        index = {label: i for i, label in enumerate(self.names)}
        self.y = np.array([index[label] for label in data.labels], dtype=np.int64)
        self.held = np.zeros(len(self.y), dtype=bool)
        self.held[held_rows] = True
        self.texts, self.test = list(data.texts), test

    def probabilities(self, state: Mapping[str, Any]) -> tuple[FloatArray, FloatArray, float]:
        """Held-out and test probabilities, and the head's L2."""
        self.encoder.model.load_state_dict(dict(state))
        x = self.encoder.embed_all(self.texts).numpy()
        t = self.encoder.embed_all(list(self.test.texts)).numpy()
        fit, held, n = ~self.held, self.held, len(self.names)
        best: tuple[float, float, FloatArray] | None = None
        for l2 in L2_GRID:
            probs = predict_proba(train_head(x[fit], self.y[fit], n, HeadConfig(l2=l2)), x[held])
            acc = float((probs.argmax(axis=1) == self.y[held]).mean())
            if best is None or acc > best[0]:
                best = (acc, l2, probs)
        assert best is not None
        _, l2, held_probs = best
        test_probs = predict_proba(train_head(x, self.y, n, HeadConfig(l2=l2)), t)
        return held_probs, test_probs, l2

    def figures(self, held_probs: FloatArray, test_probs: FloatArray) -> dict[str, float]:
        held_truth = [self.names[i] for i in self.y[self.held]]
        held_guess = [self.names[i] for i in held_probs.argmax(axis=1)]
        guess = [self.names[i] for i in test_probs.argmax(axis=1)]
        truth = list(self.test.labels)
        return {
            "heldout_accuracy": accuracy(held_truth, held_guess),
            "test_accuracy": accuracy(truth, guess),
            "test_macro_f1": macro_f1(truth, guess, sorted(set(truth) | set(self.names))),
        }


def _load_state(out_dir: Path, improved: bool, original: Mapping[str, Any]) -> Mapping[str, Any]:
    if not improved:  # the run kept the original encoder
        return original
    from safetensors.torch import load_file

    return load_file(str(out_dir / "model.safetensors"))


def _run_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("best_heldout_accuracy", "best_at", "steps", "seconds", "kept")
    return {key: record.get(key) for key in keys}


def ablate(
    source: EncoderSource,
    data: IntentData,
    test: IntentData,
    base: FinetuneConfig,
    plan: AblationPlan,
    work: Path,
    progress: Progress = lambda _: None,
) -> dict[str, Any]:
    """Fine-tune as ``plan`` says (reusing runs in ``work``), score every variant."""
    import torch

    started = time.perf_counter()
    if plan.seeds < 1:
        raise ValueError("seeds must be at least 1")
    runs = run_configs(base, plan)
    records = _finetune_all(source, data, runs, work, plan.jobs, progress)
    torch.set_num_threads(max(1, plan.jobs))
    split = runs["seed-0"]
    split_seed = split.seed if split.split_seed is None else split.split_seed
    _, held_rows = stratified_split(list(data.labels), split.heldout_share, split_seed)
    scorer = _Scorer(source, data, test, np.asarray(held_rows), plan.max_length)
    states = {
        name: _load_state(work / name, bool(records[name]["improved"]), scorer.original)
        for name in runs
    }
    seeded = [states[f"seed-{k}"] for k in range(plan.seeds)]
    mixes: dict[str, tuple[Mapping[str, Any], int]] = {"original": (scorer.original, 1)}
    mixes.update({name: (state, 1) for name, state in states.items()})
    if plan.seeds > 1:
        mixes["soup"] = (mix_weights(seeded, [1.0 / plan.seeds] * plan.seeds), 1)
    for alpha in plan.alphas:
        mixes[f"wise-{alpha:g}"] = (
            mix_weights([seeded[0], scorer.original], [alpha, 1.0 - alpha]), 1
        )
    variants: list[dict[str, Any]] = []
    seed_probs: list[tuple[FloatArray, FloatArray]] = []
    for name, (state, encoders) in mixes.items():
        held_probs, test_probs, l2 = scorer.probabilities(state)
        if name.startswith("seed-"):
            seed_probs.append((held_probs, test_probs))
        row = {"name": name, "encoders": encoders, "head_l2": l2,
               **scorer.figures(held_probs, test_probs)}  # fmt: skip
        if name == "refit":
            row["heldout_trained_on"] = True
        progress(f"ablate: {name} held-out {row['heldout_accuracy']:.4f} "
                 f"test {row['test_accuracy']:.4f}")
        variants.append(row)
    if plan.seeds > 1:
        held_mean = np.mean([h for h, _ in seed_probs], axis=0)
        test_mean = np.mean([t for _, t in seed_probs], axis=0)
        variants.append({"name": "ensemble", "encoders": plan.seeds, "head_l2": None,
                         **scorer.figures(held_mean, test_mean)})  # fmt: skip
    return {
        "rows_train": len(data.texts),
        "rows_test": len(test.texts),
        "heldout_rows": len(held_rows),
        "scoring": "fp32 torch embeddings; logistic-regression head, L2 by held-out accuracy",
        "runs": {name: _run_summary(records[name]) for name in runs},
        "variants": variants,
        "seconds": round(time.perf_counter() - started, 2),
    }
