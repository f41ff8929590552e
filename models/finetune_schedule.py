"""How a fine-tuning run walks its data and sets its learning rates (models/finetune.py).

Batches of same-intent pairs (optionally grouped by length), the steps at which held-out
accuracy is checked, the warmup + linear-decay factor, layer-wise learning rates for a
BERT-like encoder, and a running mean of weights. Torch is only touched through the
objects passed in.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import numpy.typing as npt

_MEGABATCH = 50  # batches sorted by length together (as transformers' LengthGroupedSampler)


def pair_batches(
    y: npt.NDArray[np.int64],
    pairs: int,
    rng: np.random.Generator,
    lengths: npt.NDArray[np.int64] | None = None,
) -> list[Any]:
    """Row batches where every row has a same-intent partner (the contrastive positives).

    With ``lengths`` (tokens per row), pairs are shuffled, sorted by length within
    windows of ``_MEGABATCH`` batches, cut into batches, and the batches shuffled: each
    batch pads to a length near its rows' own, and the batch order stays random.
    """
    pairs_list: list[tuple[int, int]] = []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        if len(rows) % 2:
            rows = np.append(rows, rows[0])
        pairs_list.extend(zip(rows[0::2].tolist(), rows[1::2].tolist(), strict=True))
    order = rng.permutation(len(pairs_list))
    if lengths is not None:
        longest = np.array([max(lengths[a], lengths[b]) for a, b in pairs_list])
        window = pairs * _MEGABATCH
        order = np.concatenate(
            [
                chunk[np.argsort(longest[chunk], kind="stable")]
                for chunk in np.array_split(order, max(1, -(-len(order) // window)))
            ]
        )
    batches = []
    for start in range(0, len(order), pairs):
        chosen = [pairs_list[i] for i in order[start : start + pairs]]
        batches.append(np.array([r for pair in chosen for r in pair], dtype=np.int64))
    if lengths is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def check_steps(batches: int, checks: int) -> set[int]:
    """The steps of an epoch after which held-out accuracy is checked: ``checks`` evenly
    spaced, the last one at the epoch's end (never two in a row at an odd length)."""
    checks = min(max(1, checks), batches)
    return {round(batches * k / checks) for k in range(1, checks + 1)}


def lr_factor(progress: float, warmup_share: float, linear_decay: bool) -> float:
    """Multiplier of the peak learning rate at ``progress`` (0..1) through the schedule:
    linear warmup over ``warmup_share``, then linear decay to 0 (or constant)."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup_share > 0.0 and progress < warmup_share:
        return progress / warmup_share
    if not linear_decay:
        return 1.0
    return max(0.0, (1.0 - progress) / max(1e-9, 1.0 - warmup_share))


_LAYER = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def layer_param_groups(model: Any, learning_rate: float, decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups of a BERT-like ``model`` with layer-wise learning rates.

    The top transformer layer (and anything above it, e.g. the unused pooler) gets
    ``learning_rate``, layer ``i`` of ``n`` gets ``learning_rate * decay ** (n - 1 - i)``,
    and the embeddings ``decay ** n``. Frozen parameters are left out.
    """
    n = int(model.config.num_hidden_layers)
    groups: dict[int, list[Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        match = _LAYER.search(name)
        if match:
            depth = n - 1 - int(match.group(1))
        elif name.startswith("embeddings.") or ".embeddings." in name:
            depth = n
        else:
            depth = 0
        groups.setdefault(depth, []).append(param)
    return [
        {"params": params, "lr": learning_rate * decay**depth, "depth": depth}
        for depth, params in sorted(groups.items())
    ]


class WeightAverage:
    """Running mean of ``state_dict``s: floating tensors averaged, others kept as last seen."""

    def __init__(self) -> None:
        self.count = 0
        self._sums: dict[str, Any] = {}

    def add(self, state: dict[str, Any]) -> None:
        self.count += 1
        for key, value in state.items():
            value = value.detach()
            if not value.is_floating_point():
                self._sums[key] = value.clone()
            elif key in self._sums:
                self._sums[key] += value
            else:
                self._sums[key] = value.clone().double()

    def mean(self, like: dict[str, Any]) -> dict[str, Any]:
        """The mean, in the dtypes of ``like`` (a state dict of the same model)."""
        return {
            key: (value / self.count).to(like[key].dtype) if value.is_floating_point() else value
            for key, value in self._sums.items()
        }
