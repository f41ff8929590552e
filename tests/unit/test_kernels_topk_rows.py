"""Batched top-k (kernels.topk.top_k_rows) against the naive per-row reference."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.topk import top_k_rows
from tests import naive


def test_top_k_rows_matches_naive_per_row_with_ties_and_padding() -> None:
    rng = np.random.default_rng(4)
    scores = rng.integers(0, 5, size=(40, 30)).astype(np.float64)  # many ties, zeros
    mask = rng.random((40, 30)) < 0.3
    mask[3, :25] = True  # row 3 keeps at most 5 candidates
    got = top_k_rows(scores, 10, mask, min_score=0.0)
    for r in range(40):
        want = naive.top_k(scores[r].tolist(), 10, mask[r].tolist(), 0.0)
        assert got[r].tolist() == want + [-1] * (10 - len(want))
    assert (got == -1).any()  # some rows had fewer than 10 candidates
    with pytest.raises(ValueError, match="bool array"):
        top_k_rows(scores, 3, mask.astype(np.int8))
    with pytest.raises(ValueError, match="2-D"):
        top_k_rows(scores[0], 3, mask[0])
