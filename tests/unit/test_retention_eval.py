"""`eval retention` on a shop small enough to work out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from server.cli import main
from server.errors import DataError
from server.retention.evaluate import run
from tests.unit.test_retention import _Shop


def _two_customers() -> _Shop:
    shop = _Shop()
    for cid, gap in (("c1", 20), ("c2", 40)):
        shop.customer(cid)
        for k in range(3):
            shop.order(cid, -200 + k * gap, ("p-coffee", 1))
    shop.customer("c3")
    shop.order("c3", -50, ("p-coffee", 1))  # one purchase: nothing to hold out
    return shop


def test_mae_of_each_method_by_hand() -> None:
    result = run(_two_customers().snapshot(), shrink=1.0)
    assert result["held_out"] == 2 and result["customers"] == 2 and result["products"] == 1
    # Training intervals 20 and 40: product median 30, off by 10 for both.
    assert result["product_median_interval_mae_days"] == pytest.approx(10.0)
    # Each customer's last interval equals the held-out one.
    assert result["customer_last_interval_mae_days"] == pytest.approx(0.0)
    # Pace from one interval, shrink 1: 30 * sqrt(20/30) and 30 * sqrt(40/30).
    want = (abs(30 * math.sqrt(2 / 3) - 20) + abs(30 * math.sqrt(4 / 3) - 40)) / 2
    assert result["replenish_mae_days"] == pytest.approx(want, abs=1e-3)
    methods = result["methods"]
    lo, hi = methods["product_median_interval"]["minus_replenish_ci95"]
    assert lo <= 10.0 - want <= hi


def test_held_out_purchases_do_not_inform_the_product_cadence() -> None:
    shop = _two_customers()
    shop.order("c1", -100, ("p-coffee", 1))  # c1's last gap becomes 60 (held out)
    result = run(shop.snapshot(), shrink=1.0)
    # Training: c1 20, 20; c2 40 -> median 20 for the product; c1 off by 40, c2 by 20.
    assert result["product_median_interval_mae_days"] == pytest.approx(30.0)


def test_validation_scores_the_purchase_before_the_last() -> None:
    shop = _two_customers()
    shop.order("c1", -100, ("p-coffee", 1))
    shop.order("c1", -80, ("p-coffee", 1))
    result = run(shop.snapshot(), validation=True)
    assert result["held_out"] == 1 and result["protocol"].startswith("validation")


def test_no_repeat_purchases_is_a_data_error() -> None:
    shop = _Shop()
    shop.customer("c1")
    shop.order("c1", -10, ("p-mug", 1))
    with pytest.raises(DataError):
        run(shop.snapshot())


def test_cli_prints_the_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from server.demo.generate import generate

    generate(tmp_path / "shop", "XS", 3)
    assert main(["eval", "retention", "--data", str(tmp_path / "shop"),
                 "--consumables-only"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("replenish_mae_days", "product_median_interval_mae_days",
                "customer_last_interval_mae_days"):
        assert out[key] > 0
    assert out["held_out"] > 0 and out["shrink"] == 1.0
