"""Replenishment timing quality: predict the date of each customer's last re-buy.

Protocol: for every (customer, product) bought on at least three occasions (same-day
purchases are one occasion; cancelled orders are skipped), the last occasion is held
out, and every method predicts its date from what came before. Product-level
statistics are computed from the remaining (training) purchases only, so no held-out
purchase informs its own prediction. Scored by the mean absolute error in days.

- `replenish` (what the server uses): the product's median per-unit interval at the
  customer's pace (pooled over all their re-buys), times the units bought last
  (kernels.cadence);
- baseline `product_median_interval`: the product's median interval over all buyers;
- baseline `customer_last_interval`: the customer's last interval with the product;
- ablations: the same estimate without the quantity, and the customer's own median
  interval with that product.

`validation=True` first drops each history's last occasion and scores the one before
it, so the shrink weight can be chosen without looking at the test purchases. 95%
intervals come from a seeded bootstrap over held-out purchases; each other method also
gets the paired interval of its error minus the server's (above 0: the server is better).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kernels.cadence import cadence_estimates, group_medians, purchase_intervals
from server.errors import DataError
from server.knowledge.shop.schema import Snapshot
from server.retention.history import to_days

MIN_OCCASIONS = 3
BOOTSTRAP = 1000
FloatArray = npt.NDArray[np.float64]


def _histories(snapshot: Snapshot, consumables_only: bool
               ) -> tuple[list[tuple[str, str]], list[list[tuple[float, float]]]]:
    """(customer, product) keys and their purchase occasions (day, units), ascending."""
    consumable = {p.product_id for p in snapshot.products if p.replenish_days > 0}
    orders = {o.order_id: o for o in snapshot.orders if o.status != "cancelled"}
    events: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for it in snapshot.order_items:
        o = orders.get(it.order_id)
        if o is None or (consumables_only and it.product_id not in consumable):
            continue
        events[(o.customer_id, it.product_id)].append((to_days(o.ordered_at),
                                                       float(it.quantity)))
    keys, out = [], []
    for key in sorted(events):
        occasions: list[list[float]] = []
        for day, qty in sorted(events[key]):
            if occasions and day - occasions[-1][0] < 1.0:
                occasions[-1][1] += qty
            else:
                occasions.append([day, qty])
        keys.append(key)
        out.append([(d, q) for d, q in occasions])
    return keys, out


def _csr(groups: list[list[tuple[float, float]]]) -> tuple[npt.NDArray[np.int64], FloatArray,
                                                           FloatArray]:
    ptr = np.concatenate([[0], np.cumsum([len(g) for g in groups])]).astype(np.int64)
    return (ptr, np.array([d for g in groups for d, _ in g], dtype=np.float64),
            np.array([q for g in groups for _, q in g], dtype=np.float64))


def _product_medians(keys: list[tuple[str, str]], groups: list[list[tuple[float, float]]],
                     per_unit: bool) -> dict[str, float]:
    iv = purchase_intervals(*_csr(groups), per_unit=per_unit)
    pooled: dict[str, list[float]] = defaultdict(list)
    for g, (_, pid) in enumerate(keys):
        pooled[pid].extend(iv.values[iv.indptr[g]:iv.indptr[g + 1]].tolist())
    pids = sorted(pooled)
    ptr = np.concatenate([[0], np.cumsum([len(pooled[p]) for p in pids])]).astype(np.int64)
    med = group_medians(ptr, np.array([v for p in pids for v in pooled[p]], dtype=np.float64))
    return {p: float(m) for p, m in zip(pids, med, strict=True)}


def _ci(values: FloatArray, boot: npt.NDArray[np.int64]) -> list[float]:
    means = values[boot].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 3),
            round(float(np.percentile(means, 97.5)), 3)]


def _mae(err: FloatArray, reference: FloatArray, boot: npt.NDArray[np.int64]
         ) -> dict[str, Any]:
    """MAE with its 95% interval, and the paired interval of (this - reference) errors."""
    return {"mae_days": round(float(err.mean()), 3), "ci95": _ci(err, boot),
            "minus_replenish_ci95": _ci(err - reference, boot)}


def run(snapshot: Snapshot, shrink: float = 1.0, consumables_only: bool = False,
        validation: bool = False, seed: int = 0) -> dict[str, Any]:
    keys, histories = _histories(snapshot, consumables_only)
    if validation:
        histories = [h[:-1] if len(h) >= MIN_OCCASIONS else h for h in histories]
    chosen = [i for i, h in enumerate(histories) if len(h) >= MIN_OCCASIONS]
    if not chosen:
        raise DataError(f"no customer bought a product on {MIN_OCCASIONS} or more occasions")
    # Training data: every history without its last occasion where one is held out.
    held = set(chosen)
    train = [h[:-1] if i in held else h for i, h in enumerate(histories)]
    per_unit_prior = _product_medians(keys, train, per_unit=True)
    plain_prior = _product_medians(keys, train, per_unit=False)
    tkeys = [keys[i] for i in chosen]
    thist = [train[i] for i in chosen]
    actual = np.array([histories[i][-1][0] - histories[i][-2][0] for i in chosen])
    ptr, times, qty = _csr(thist)

    def prior(table: dict[str, float]) -> FloatArray:
        return np.array([table.get(pid, np.nan) for _, pid in tkeys], dtype=np.float64)

    owners: dict[str, int] = {}
    owner = np.array([owners.setdefault(cid, len(owners)) for cid, _ in tkeys], dtype=np.int64)
    # The pace pools every training interval of the customer, held-out histories or not.
    ours = _paced(keys, train, per_unit_prior, tkeys, shrink, per_unit=True)
    plain = _paced(keys, train, plain_prior, tkeys, shrink, per_unit=False)
    own = cadence_estimates(ptr, times, qty, None, owner, per_unit=False).next_gap
    product = prior(plain_prior)
    last = np.array([h[-1][0] - h[-2][0] for h in thist])
    rng = np.random.default_rng(seed)
    # A product prior can be missing only when nobody else re-bought it: fall back to the
    # customer's own interval there, for every method alike.
    def err(pred: FloatArray) -> FloatArray:
        return np.abs(np.where(np.isnan(pred), last, pred) - actual)

    boot = rng.integers(0, actual.shape[0], (BOOTSTRAP, actual.shape[0]))
    ref = err(ours)
    scores = {name: _mae(err(pred), ref, boot) for name, pred in (
        ("replenish", ours), ("product_median_interval", product),
        ("customer_last_interval", last), ("ablation_without_quantity", plain),
        ("ablation_customer_median", own))}
    del scores["replenish"]["minus_replenish_ci95"]
    return {
        "replenish_mae_days": scores["replenish"]["mae_days"],
        "product_median_interval_mae_days": scores["product_median_interval"]["mae_days"],
        "customer_last_interval_mae_days": scores["customer_last_interval"]["mae_days"],
        "methods": scores,
        "held_out": len(chosen),
        "customers": len({k[0] for k in tkeys}),
        "products": len({k[1] for k in tkeys}),
        "products_without_prior": int(np.isnan(product).sum()),
        "median_actual_gap_days": round(float(np.median(actual)), 2),
        "protocol": ("validation: second-to-last" if validation else "last")
                    + f" of >= {MIN_OCCASIONS} purchase occasions per (customer, product)"
                    + (", consumables only" if consumables_only else ""),
        "shrink": shrink,
        "snapshot_id": snapshot.snapshot_id,
    }


def _paced(keys: list[tuple[str, str]], train: list[list[tuple[float, float]]],
           prior_by_product: dict[str, float], wanted: list[tuple[str, str]], shrink: float,
           per_unit: bool) -> FloatArray:
    """Next-gap predictions for the `wanted` histories, paces pooled over all of `train`."""
    owners: dict[str, int] = {}
    owner = np.array([owners.setdefault(cid, len(owners)) for cid, _ in keys], dtype=np.int64)
    prior = np.array([prior_by_product.get(pid, np.nan) for _, pid in keys], dtype=np.float64)
    est = cadence_estimates(*_csr(train), prior, owner, shrink=shrink, per_unit=per_unit)
    position = {k: i for i, k in enumerate(keys)}
    return est.next_gap[[position[k] for k in wanted]]


def run_dir(data_dir: Path | str, shrink: float = 1.0, consumables_only: bool = False,
            validation: bool = False) -> dict[str, Any]:
    from server.knowledge.shop.ingest import ingest_dir

    path = Path(data_dir)
    if not path.is_dir():
        raise DataError(f"shop directory {path} does not exist")
    return run(ingest_dir(path).snapshot, shrink, consumables_only, validation)
