"""Co-purchase with a bounded number of buyers per seed (the first row entries)."""

from __future__ import annotations

import numpy as np

from kernels.copurchase import copurchase_scores
from tests import naive
from tests.unit.test_kernels import _purchase_views


def test_max_buyers_reads_only_the_first_buyers_of_each_seed_row() -> None:
    rng = np.random.default_rng(21)
    n_cust, n_items = 50, 12
    purchases = {
        c: {int(i): float(rng.uniform(0, 100)) for i in rng.choice(n_items, 4, replace=False)}
        for c in range(n_cust)
    }
    views = _purchase_views(purchases, n_cust, n_items)  # rows list buyers by customer id
    seeds, sw, cap = [1, 4, 9], [1.0, 0.5, 2.0], 6
    got, _ = copurchase_scores(seeds, sw, *views, now=120.0, half_life_days=30.0,
                               max_buyers=cap)
    want = np.zeros(n_items)
    for s, w in zip(seeds, sw, strict=True):
        first = sorted(c for c in purchases if s in purchases[c])[:cap]
        part, _ = naive.copurchase({c: purchases[c] for c in first}, [s], [w], n_items, 120.0,
                                   30.0)
        want += part
    np.testing.assert_allclose(got, want, rtol=1e-12)
    full, _ = copurchase_scores(seeds, sw, *views, now=120.0, half_life_days=30.0)
    assert full.sum() > got.sum() > 0  # the cap dropped evidence
