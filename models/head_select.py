"""Choosing the intent head by held-out folds of the training file.

Candidates: the current head (linear, L2 1e-2, with typo copies), a multinomial logistic
regression whose penalty is chosen by cross-validation over a grid (without typo copies),
and that regression with typo copies. The one with the best held-out accuracy wins
(macro-F1 breaks ties; the simpler candidate wins a full tie), so typo augmentation is
kept only when it helps on the held-out folds. Every candidate's figures go into the
manifest. The L2 penalty ``l2 * ||W||^2`` on the mean cross-entropy is C = 1 / (2 l2 n)
in scikit-learn's terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from models.head import CrossValidation, HeadConfig, cross_validate

FloatArray = npt.NDArray[np.float32]
L2_GRID = (1e-3, 3e-3, 1e-2, 3e-2)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One head setting and its held-out figures."""

    name: str
    head: HeadConfig
    augmented: bool
    cv: CrossValidation

    def as_manifest(self, rows: int) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.head.kind,
            "l2": self.head.l2,
            "C": 1.0 / (2.0 * self.head.l2 * rows),
            "augmented": self.augmented,
            "cv_accuracy": self.cv.accuracy,
            "cv_macro_f1": self.cv.macro_f1,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen candidate and all that were compared."""

    chosen: Candidate
    candidates: list[Candidate]

    def as_manifest(self, rows: int) -> dict[str, Any]:
        return {
            "rule": "best held-out accuracy (macro-F1 breaks ties) over the training folds",
            "chosen": self.chosen.name,
            "candidates": [c.as_manifest(rows) for c in self.candidates],
        }


def _score(c: Candidate) -> tuple[float, float]:
    return (round(c.cv.accuracy, 6), round(c.cv.macro_f1, 6))


def select_head(
    x: FloatArray,
    labels: Sequence[str],
    label_names: Sequence[str],
    base: HeadConfig,
    seed: int,
    extra_x: FloatArray | None,
    extra_sources: Sequence[int],
    assignment: npt.NDArray[np.int64] | None = None,
    l2_grid: Sequence[float] = L2_GRID,
) -> Selection:
    """Cross-validate the candidates on ``x`` (+ augmented ``extra_x``) and pick one."""
    has_extra = extra_x is not None and len(extra_sources) > 0

    def run(name: str, head: HeadConfig, augmented: bool) -> Candidate:
        cv = cross_validate(
            x,
            labels,
            label_names,
            head,
            seed,
            extra_x if augmented else None,
            extra_sources if augmented else (),
            assignment=assignment,
        )
        return Candidate(name, head, augmented, cv)

    # "current" is the configured head (an MLP when asked for), with typo copies if any.
    current = run("current", base, has_extra)
    plain = [
        run(f"logreg l2={l2:g}", replace(base, kind="linear", l2=l2), False) for l2 in l2_grid
    ]
    best_plain = max(plain, key=_score)
    candidates = [current, *plain]
    if has_extra:
        candidates.append(run(f"{best_plain.name} + typos", best_plain.head, True))
    # max keeps the first of equal scores: current, then the plainer settings.
    chosen = max(candidates, key=_score)
    return Selection(chosen=chosen, candidates=candidates)
