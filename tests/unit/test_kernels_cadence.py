"""kernels.cadence against the naive reference (tests/naive.py) and its input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.cadence import cadence_estimates, group_medians, purchase_intervals
from tests import naive


def _flatten(groups: list[list[tuple[float, float]]]):
    indptr = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    times = np.array([t for g in groups for t, _ in g], dtype=np.float64)
    qty = np.array([q for g in groups for _, q in g], dtype=np.float64)
    return indptr, times, qty


def _random_groups(seed: int, n: int = 60) -> tuple[list[list[tuple[float, float]]], list[float]]:
    rng = np.random.default_rng(seed)
    groups = []
    for _ in range(n):
        k = int(rng.integers(0, 7))
        days = np.sort(rng.uniform(0, 400, k).round(1))
        if k > 2 and rng.random() < 0.3:
            days[1] = days[0] + 0.2  # a same-day repeat, merged into one purchase
            days = np.sort(days)
        groups.append([(float(t), float(rng.integers(1, 4))) for t in days])
    prior = [float(x) if rng.random() < 0.6 else 0.0 for x in rng.uniform(5, 60, n)]
    return groups, prior


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("per_unit", [True, False])
@pytest.mark.parametrize("shrink", [0.0, 1.5])
def test_cadence_matches_naive(seed: int, per_unit: bool, shrink: float) -> None:
    groups, prior = _random_groups(seed)
    owner = [g // 4 for g in range(len(groups))]  # about four products per customer
    got = cadence_estimates(*_flatten(groups), np.array(prior), np.array(owner),
                            shrink=shrink, per_unit=per_unit)
    want = naive.cadence(groups, prior, owner, shrink, per_unit=per_unit)
    for g, (rate, nxt, n, last, pace) in enumerate(want):
        assert got.observed[g] == n
        assert got.pace[g] == pytest.approx(pace, rel=1e-12)
        if math.isnan(rate):
            assert math.isnan(got.interval[g]) and math.isnan(got.next_gap[g])
        else:
            assert got.interval[g] == pytest.approx(rate, rel=1e-12)
            assert got.next_gap[g] == pytest.approx(nxt, rel=1e-12)
        assert got.last_time[g] == last or (math.isnan(last) and math.isnan(got.last_time[g]))


def test_two_packs_last_twice_as_long() -> None:
    # One pack then 30 days, two packs then 60 days: 30 days per unit; two more packs -> 60.
    est = cadence_estimates([0, 3], [0.0, 30.0, 90.0], [1.0, 2.0, 2.0], [30.0])
    assert est.interval[0] == pytest.approx(30.0)
    assert est.next_gap[0] == pytest.approx(60.0)
    plain = cadence_estimates([0, 3], [0.0, 30.0, 90.0], [1.0, 2.0, 2.0], per_unit=False)
    assert plain.interval[0] == pytest.approx(45.0)  # no prior: the own median


def test_the_customers_pace_carries_over_to_other_products() -> None:
    # Customer 0 re-buys product A every 20 days where A's cadence is 40: half the pace.
    # Its product B (cadence 30, bought once) is then expected after 15 days.
    est = cadence_estimates([0, 3, 4, 5], [0.0, 20.0, 40.0, 10.0, 10.0], None,
                            [40.0, 30.0, 30.0], [0, 0, 1], shrink=0.0)
    assert est.pace[0] == pytest.approx(0.5) and est.pace[1] == pytest.approx(0.5)
    assert est.interval[1] == pytest.approx(15.0)
    assert est.interval[2] == pytest.approx(30.0)  # customer 1: no history, the prior
    # With shrink 2 the two observed ratios count as much as the prior: sqrt(0.5).
    shrunk = cadence_estimates([0, 3, 4, 5], [0.0, 20.0, 40.0, 10.0, 10.0], None,
                               [40.0, 30.0, 30.0], [0, 0, 1], shrink=2.0)
    assert shrunk.interval[1] == pytest.approx(30.0 * math.sqrt(0.5))


def test_without_a_prior_the_own_median_or_nothing() -> None:
    est = cadence_estimates([0, 1, 3], [10.0, 0.0, 20.0], None, [0.0, 0.0])
    assert math.isnan(est.interval[0]) and est.interval[1] == pytest.approx(20.0)


def test_intervals_and_medians() -> None:
    iv = purchase_intervals([0, 4, 4], [0.0, 0.5, 10.0, 30.0], [1.0, 1.0, 1.0, 1.0])
    # 0 and 0.5 are one occasion of 2 units: gaps 10/2 and 20/1.
    assert iv.indptr.tolist() == [0, 2, 2]
    assert iv.values.tolist() == [5.0, 20.0]
    assert iv.last_quantity.tolist()[0] == 1.0 and math.isnan(iv.last_time[1])
    med = group_medians(iv.indptr, iv.values)
    assert med[0] == 12.5 and math.isnan(med[1])


@pytest.mark.parametrize("args", [
    ([0, 2], [5.0, 1.0], None),  # descending inside a group
    ([0, 3], [1.0, 2.0], None),  # indptr does not end at len(times)
    ([0, 2], [1.0, 2.0], [1.0, 0.0]),  # zero quantity
    ([0, 1], [math.inf], None),
])
def test_bad_inputs_are_rejected(args) -> None:
    with pytest.raises(ValueError):
        cadence_estimates(*args)


def test_descending_across_groups_is_fine() -> None:
    est = cadence_estimates([0, 2, 4], [50.0, 60.0, 1.0, 3.0])
    assert est.interval.tolist() == [10.0, 2.0]


def test_bad_owner_is_rejected() -> None:
    with pytest.raises(ValueError):
        cadence_estimates([0, 1, 2], [1.0, 2.0], None, [5.0, 5.0], [0, -1])
