"""Metrics, splits, typo augmentation, CSV loading and the numpy head, checked by hand."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models.augment import add_typos, typo_copies
from models.head import HeadConfig, oos_threshold, predict_proba, train_head
from models.intent_data import default_intents_path, load_intents
from models.metrics import (
    accuracy,
    macro_f1,
    per_class_f1,
    stratified_folds,
    stratified_split,
    top_confusions,
)
from server.errors import DataError

DEMO_LABELS = [
    "order_status",
    "cancel_order",
    "change_order",
    "return_item",
    "refund_status",
    "damaged_item",
    "wrong_item",
    "missing_package",
    "warranty_claim",
    "change_address",
    "delivery_options",
    "shipping_cost",
    "payment_problem",
    "invoice_request",
    "account_access",
    "delete_account",
    "product_question",
    "product_availability",
    "promo_code",
    "complaint",
    "talk_to_human",
    "praise",
    "reorder",
    "newsletter",
    "duplicate_charge",
    "shipping_destinations",
    "price_match",
    "gift_card",
    "subscription",
]


def test_f1_against_hand_computed_values() -> None:
    truth = ["a", "a", "a", "b", "b", "c"]
    guess = ["a", "a", "b", "b", "c", "c"]
    # a: tp2 fp0 fn1 -> 4/5; b: tp1 fp1 fn1 -> 1/2; c: tp1 fp1 fn0 -> 2/3
    scores = per_class_f1(truth, guess, ["a", "b", "c", "d"])
    assert scores == pytest.approx({"a": 0.8, "b": 0.5, "c": 2 / 3, "d": 0.0})
    assert macro_f1(truth, guess, ["a", "b", "c"]) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert accuracy(truth, guess) == pytest.approx(4 / 6)
    assert top_confusions(truth, guess) == [
        {"true": "a", "pred": "b", "count": 1},
        {"true": "b", "pred": "c", "count": 1},
    ]
    with pytest.raises(ValueError):
        accuracy(["a"], [])


def test_stratified_split_and_folds() -> None:
    labels = ["x"] * 50 + ["y"] * 10 + ["z"] * 2
    train, test = stratified_split(labels, 0.2, seed=3)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
    assert Counter(labels[i] for i in test) == Counter({"x": 10, "y": 2})
    again_train, _ = stratified_split(labels, 0.2, seed=3)
    assert np.array_equal(train, again_train)
    folds = stratified_folds(labels, 5, seed=1)
    for fold in range(5):
        counts = Counter(labels[i] for i in np.flatnonzero(folds == fold))
        assert counts["x"] == 10 and counts["y"] == 2


def test_typos_are_small_deterministic_edits() -> None:
    text = "please cancel order A10023 tomorrow"
    edited = add_typos(text, random.Random(0), 1)
    assert edited != text
    assert len(edited.split()) == len(text.split())
    assert sum(a != b for a, b in zip(edited.split(), text.split(), strict=True)) == 1
    assert add_typos("hi ok A1", random.Random(0), 2) == "hi ok A1"
    variants, sources = typo_copies(["one word here", "another sentence there"], 2, seed=5)
    assert sources == [0, 1, 0, 1]
    assert typo_copies(["one word here", "another sentence there"], 2, seed=5)[0] == variants


def test_linear_head_separates_and_folds_standardisation() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)).astype(np.float32) * 3
    y = np.repeat(np.arange(3), 30)
    x = (centers[y] + rng.normal(scale=0.3, size=(90, 8)) + 5.0).astype(np.float32)
    for kind in ("linear", "mlp"):
        layers = train_head(x, y, 3, HeadConfig(kind=kind, epochs=200))
        probs = predict_proba(layers, x)
        assert (probs.argmax(axis=1) == y).mean() == 1.0
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(DataError):
        train_head(x, y, 3, HeadConfig(kind="tree"))


def test_oos_threshold_is_a_quantile() -> None:
    probs = np.linspace(0.0, 1.0, 101).astype(np.float32)
    assert oos_threshold(probs, 0.05) == pytest.approx(0.05, abs=1e-6)
    with pytest.raises(ValueError):
        oos_threshold(probs, 1.0)


def test_demo_intents_cover_the_contract_labels() -> None:
    data = load_intents(default_intents_path())
    assert sorted(data.label_counts) == sorted(DEMO_LABELS)
    assert min(data.label_counts.values()) >= 25
    assert len(set(t.lower() for t in data.texts)) == len(data.texts)


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("text,label\nhello,a\n")
    with pytest.raises(DataError, match="no column 'intent'"):
        load_intents(path)
    path.write_text("text,intent\nhello,a\n,b\n")
    with pytest.raises(DataError, match="row 3"):
        load_intents(path)
    path.write_text("text,intent\nhello,a\nhi,a\n")
    with pytest.raises(DataError, match="at least 2 labels"):
        load_intents(path)
    with pytest.raises(DataError, match="cannot read"):
        load_intents(tmp_path / "missing.csv")
