"""Fine-tuning the sentence encoder on the intent data before export (``--finetune``).

The recipe, on CPU in minutes: a seeded stratified held-out share of the training file
is set aside; a linear head is first fitted on the frozen embeddings (a linear probe, so
the encoder starts from a sensible classifier, as in LP-FT, Kumar et al. 2022), then the
encoder and head are trained together on cross-entropy plus a supervised contrastive
term over the batch (each batch holds pairs of same-intent utterances; the contrastive
pull between paraphrases is SetFit's idea, Tunstall et al. 2022). Held-out accuracy is
checked a few times per epoch; training stops after ``patience`` checks without gain
(or after ``max_minutes`` of training steps), and the best weights are kept: those of
the best check, or the mean of the weights at the checks of the schedule's second half
when that does at least as well. The learning rate warms up and then decays linearly to
zero (by steps, or by the time cap when that comes first, so a capped run still
anneals), lower layers learn more slowly (layer-wise decay, as in ELECTRA, Clark et al.
2020), the cross-entropy is label smoothed, and batches hold utterances of similar
length so that padding stays small (models/finetune_schedule.py). If no check beats the
frozen encoder's held-out accuracy, the original encoder is kept. The result
is a Hugging Face model folder that goes through the same export, pooling and int8
quantization as the original, so the served graph keeps its shape and outputs. Torch is
build-time only.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.encoder import EncoderSource, source_from_dir
from models.finetune_schedule import (
    WeightAverage,
    check_steps,
    layer_param_groups,
    lr_factor,
    pair_batches,
)
from models.metrics import stratified_split
from models.runtime import load_tokenizer
from server.errors import DataError

_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    """Settings of one fine-tuning run (all recorded in the manifest)."""

    max_epochs: int = 5
    pairs_per_batch: int = 16  # a batch is 2 x pairs_per_batch utterances
    learning_rate: float = 1e-4  # peak, of the top encoder layer
    head_learning_rate: float = 2e-3
    # Each layer below the top learns at this factor of the one above (1.0: all equal).
    layer_lr_decay: float = 0.9
    warmup_share: float = 0.06  # of the planned steps, then linear decay to 0
    linear_decay: bool = True  # False: constant after the warmup
    label_smoothing: float = 0.1
    length_bucketed: bool = True  # batches of similar-length utterances (less padding)
    max_length: int = 32  # tokens seen in training; serving keeps its own max_length
    contrastive_weight: float = 1.0
    contrastive_temperature: float = 0.05
    heldout_share: float = 0.15
    checks_per_epoch: int = 2
    patience: int = 4
    # Checks after this share of the planned steps also join a running mean of the
    # weights (stochastic weight averaging, Izmailov et al. 2018); the mean is kept when
    # its held-out accuracy is at least the best single check's. > 1.0: no averaging.
    average_from: float = 0.5
    max_minutes: float = 25.0  # cap on the training steps (the probe before is not counted)
    # One thread: on 2 shared cores, 2 threads ran a step at ~2 s against ~0.5 s for one
    # (load ~4); the sync between threads starves when other jobs hold a core.
    threads: int = 1
    seed: int = 0
    # The held-out split's seed (None: ``seed``). Fixing it while ``seed`` varies gives
    # runs that differ only in batch order and the probe's start (models/ablation.py).
    split_seed: int | None = None
    freeze_word_embeddings: bool = True


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """The encoder to export (fine-tuned or the original), the held-out rows, the record."""

    source: EncoderSource
    improved: bool
    heldout_rows: npt.NDArray[np.int64]
    record: dict[str, Any]


Progress = Callable[[str], None]


def _supcon(emb: Any, y: Any, temperature: float) -> Any:
    """Supervised contrastive loss (Khosla et al. 2020) over unit-norm ``emb``."""
    import torch

    n = emb.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    sim = (emb @ emb.T / temperature).masked_fill(eye, float("-inf"))
    positives = (y[:, None] == y[None, :]) & ~eye
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    has = positives.any(dim=1)
    if not bool(has.any()):
        return emb.sum() * 0.0
    per_row = log_prob.masked_fill(~positives, 0.0).sum(1) / positives.sum(1).clamp(min=1)
    return -per_row[has].mean()


class TorchEncoder:
    """MiniLM + mean pooling + L2 normalisation in torch, mirroring the exported graph."""

    def __init__(self, path: Path, max_length: int) -> None:
        from transformers import AutoModel

        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.tokenizer = load_tokenizer(path / "tokenizer.json", max_length)

    def embed(self, texts: Sequence[str]) -> Any:
        import torch

        encodings = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        types = torch.tensor([e.type_ids for e in encodings], dtype=torch.long)
        hidden = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types)[0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=1)

    def lengths(self, texts: Sequence[str]) -> npt.NDArray[np.int64]:
        """Tokens per text after truncation (padding not counted)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        return np.array([sum(e.attention_mask) for e in encodings], dtype=np.int64)

    def embed_all(self, texts: Sequence[str], batch: int = 128) -> Any:
        import torch

        self.model.eval()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty((len(texts), self.model.config.hidden_size))
        with torch.no_grad():
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                out[rows] = self.embed([texts[i] for i in rows])
        return out


def _snapshot(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _probe_head(emb: Any, y: Any, n_labels: int, seed: int) -> Any:
    """A linear head fitted on frozen embeddings (full-batch Adam, a few hundred steps)."""
    import torch

    torch.manual_seed(seed)
    head = torch.nn.Linear(emb.shape[1], n_labels)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(emb), y)
        loss.backward()
        optimizer.step()
    return head


def _accuracy(head: Any, emb: Any, y: Any) -> float:
    import torch

    with torch.no_grad():
        return float((head(emb).argmax(1) == y).float().mean())


def finetune_encoder(
    source: EncoderSource,
    texts: Sequence[str],
    labels: Sequence[str],
    out_dir: Path,
    config: FinetuneConfig,
    progress: Progress = lambda _: None,
) -> FinetuneResult:
    """Fine-tune ``source`` on (``texts``, ``labels``); the model folder lands in ``out_dir``."""
    import torch

    started = time.perf_counter()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    names = sorted(set(labels))
    index = {label: i for i, label in enumerate(names)}
    y_all = np.array([index[label] for label in labels], dtype=np.int64)
    split_seed = config.seed if config.split_seed is None else config.split_seed
    train_rows, held_rows = stratified_split(list(labels), config.heldout_share, split_seed)
    if len(held_rows) == 0:
        raise DataError("fine-tuning needs at least 2 rows for some label to hold out")
    encoder = TorchEncoder(source.path, config.max_length)
    train_texts = [texts[i] for i in train_rows]
    held_texts = [texts[i] for i in held_rows]
    y_train = torch.from_numpy(y_all[train_rows])
    y_held = torch.from_numpy(y_all[held_rows])
    head = _probe_head(encoder.embed_all(train_texts), y_train, len(names), config.seed)
    frozen_acc = _accuracy(head, encoder.embed_all(held_texts), y_held)
    progress(f"fine-tune: frozen held-out accuracy {frozen_acc:.4f} on {len(held_rows)} rows")
    if config.freeze_word_embeddings:
        # The word-embedding table (30k x 384, half of MiniLM's weights): a few thousand
        # utterances touch few of its rows, and AdamW would update all of them each step.
        encoder.model.get_input_embeddings().weight.requires_grad_(False)
    groups = layer_param_groups(encoder.model, config.learning_rate, config.layer_lr_decay)
    groups.append({"params": list(head.parameters()), "lr": config.head_learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=0.01)
    peak_lrs = [float(group["lr"]) for group in optimizer.param_groups]
    rng = np.random.default_rng(config.seed)
    lengths = encoder.lengths(train_texts) if config.length_bucketed else None
    pairs_total = sum((int(c) + 1) // 2 for c in np.bincount(y_all[train_rows]) if c)
    planned_steps = config.max_epochs * -(-pairs_total // config.pairs_per_batch)
    budget = 60.0 * config.max_minutes
    best_acc, best_state, best_at = frozen_acc, None, "frozen"
    checks: list[dict[str, Any]] = []
    stale, steps, stop = 0, 0, False
    average, head_average = WeightAverage(), WeightAverage()
    train_started = time.perf_counter()
    deadline = train_started + budget  # training steps only
    y_train_np = y_all[train_rows]
    for epoch in range(config.max_epochs):
        batches = pair_batches(y_train_np, config.pairs_per_batch, rng, lengths)
        check_at = check_steps(len(batches), config.checks_per_epoch)
        for b, rows in enumerate(batches, start=1):
            # The schedule's clock is the later of steps and time: a capped run anneals too.
            elapsed = time.perf_counter() - train_started
            progress_made = max(steps / planned_steps, elapsed / budget)
            factor = lr_factor(progress_made, config.warmup_share, config.linear_decay)
            for group, peak in zip(optimizer.param_groups, peak_lrs, strict=True):
                group["lr"] = peak * factor
            encoder.model.train()
            emb = encoder.embed([train_texts[i] for i in rows])
            yb = y_train[torch.from_numpy(rows)]
            loss = torch.nn.functional.cross_entropy(
                head(emb), yb, label_smoothing=config.label_smoothing
            )
            loss = loss + config.contrastive_weight * _supcon(
                emb, yb, config.contrastive_temperature
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            out_of_time = time.perf_counter() > deadline
            if b not in check_at and not out_of_time:
                continue
            acc = _accuracy(head, encoder.embed_all(held_texts), y_held)
            at = f"epoch {epoch + 1} step {b}/{len(batches)}"
            checks.append(
                {"at": at, "heldout_accuracy": acc, "loss": float(loss.detach()),
                 "lr_factor": round(factor, 4)}
            )
            progress(f"fine-tune: {at} held-out accuracy {acc:.4f} "
                     f"({time.perf_counter() - started:.0f}s)")
            if steps >= config.average_from * planned_steps:
                average.add(encoder.model.state_dict())
                head_average.add(head.state_dict())
            if acc > best_acc:
                best_acc, best_at, stale = acc, at, 0
                best_state = _snapshot(encoder.model)
            else:
                stale += 1
            if stale >= config.patience or out_of_time:
                stop = True
                break
        if stop:
            break
    average_acc = None
    if average.count >= 2:
        encoder.model.load_state_dict(average.mean(encoder.model.state_dict()))
        head.load_state_dict(head_average.mean(head.state_dict()))
        average_acc = _accuracy(head, encoder.embed_all(held_texts), y_held)
        progress(f"fine-tune: mean of the last {average.count} checks' weights held-out "
                 f"accuracy {average_acc:.4f}")
        if average_acc >= best_acc:
            best_acc, best_at = average_acc, f"mean of the last {average.count} checks"
            best_state = _snapshot(encoder.model)
    improved = best_state is not None
    record: dict[str, Any] = {
        "recipe": "linear probe, then encoder + head on label-smoothed cross-entropy + supervised "
        "contrastive (in-batch same-intent pairs); early stopping on held-out accuracy; "
        "the best check or the mean of the later checks' weights, by held-out accuracy",
        "schedule": f"{planned_steps} planned steps, warmup {config.warmup_share:g}, "
        + ("linear decay to 0" if config.linear_decay else "constant")
        + f", layer-wise decay {config.layer_lr_decay:g}",
        "config": asdict(config),
        "train_rows": len(train_rows),
        "heldout_rows": len(held_rows),
        "frozen_heldout_accuracy": frozen_acc,
        "best_heldout_accuracy": best_acc,
        "average_heldout_accuracy": average_acc,
        "best_at": best_at,
        "checks": checks,
        "steps": steps,
        "kept": "fine-tuned" if improved else "original (no held-out gain)",
        "seconds": round(time.perf_counter() - started, 2),
    }
    if not improved:
        return FinetuneResult(source, False, held_rows, record)
    encoder.model.load_state_dict(best_state)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder.model.save_pretrained(str(out_dir))
    for name in _TOKENIZER_FILES:
        if (source.path / name).is_file():
            shutil.copyfile(source.path / name, out_dir / name)
    (out_dir / "finetune.json").write_text(json.dumps(record, indent=2))
    tuned = source_from_dir(out_dir)
    tuned = EncoderSource(
        path=tuned.path,
        package=source.package,
        package_version=source.package_version,
        path_name=f"{source.path_name} (fine-tuned)",
    )
    return FinetuneResult(tuned, True, held_rows, record)
