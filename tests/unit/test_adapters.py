"""Shared-data adapters (ABCD guidelines, Bitext responses) -> Article records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from server.errors import DataError
from server.knowledge.sources.adapters import (
    ABCD_GUIDELINES,
    BITEXT_CSV,
    abcd_guidelines,
    bitext_responses,
    clean_placeholders,
    shared_data_dir,
)

SHARED = shared_data_dir()
needs_abcd = pytest.mark.skipif(
    not (SHARED / ABCD_GUIDELINES).is_file(), reason=f"shared ABCD data absent at {SHARED}"
)
needs_bitext = pytest.mark.skipif(
    not (SHARED / BITEXT_CSV).is_file(), reason=f"shared Bitext data absent at {SHARED}"
)


@pytest.mark.shared
@needs_abcd
def test_abcd_guidelines_one_article_per_subflow() -> None:
    articles = abcd_guidelines(SHARED / ABCD_GUIDELINES)
    raw = json.loads((SHARED / ABCD_GUIDELINES).read_text())
    expected = [(flow, sub) for flow, spec in raw.items() for sub in spec["subflows"]]
    assert len(articles) == len(expected) == 55
    assert len({a.article_id for a in articles}) == 55
    assert [a.title for a in articles] == [f"{f}: {s}" for f, s in expected]
    assert all(a.doc_type == "guideline" and "## Steps" in a.body for a in articles)
    stain = next(a for a in articles if a.title == "Product Defect: Return Due to Stain")
    assert stain.article_id == "abcd-product-defect-return-due-to-stain"
    assert "## Policy" in stain.body and "within the last 90 days" in stain.body
    assert "Bronze members" in stain.body.split("## Policy", 1)[1]
    assert stain.tags == ("abcd", "product-defect", "return-due-to-stain")
    # The directory form gives the same records.
    assert abcd_guidelines(SHARED / "abcd") == articles


@pytest.mark.shared
@needs_bitext
def test_bitext_responses_first_distinct_per_intent() -> None:
    articles = bitext_responses(SHARED / BITEXT_CSV, limit_per_intent=3)
    with (SHARED / BITEXT_CSV).open(newline="") as fh:
        intents = {row["intent"] for row in csv.DictReader(fh)}
    assert len(intents) == 27 and len(articles) == 27 * 3
    assert all(a.doc_type == "faq" and "{{" not in a.body for a in articles)
    first = articles[0]
    assert (first.article_id, first.title) == ("bitext-cancel-order-1", "Cancel order")
    assert first.tags == ("bitext", "cancel_order", "order")
    assert "our our" not in " ".join(a.body for a in articles)
    kept = bitext_responses(SHARED / BITEXT_CSV, limit_per_intent=1, keep_placeholders=True)
    assert len(kept) == 27 and any("{{" in a.body for a in kept)


def test_bitext_on_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    rows = [
        ("track_order", "ORDER", "Track {{Order Number Anonymized}} on {{Website Name}}."),
        ("track_order", "ORDER", "Track {{Order Number Anonymized}} on {{Website Name}}."),
        ("track_order", "ORDER", "Open {{Order History}} in our {{Website Name}}."),
        ("track_order", "ORDER", "A third one."),
        ("get_refund", "REFUND", "Call {{Customer Support Phone Number}}."),
    ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["instruction", "intent", "category", "response"])
        w.writerows([("q", i, c, r) for i, c, r in rows])
    got = bitext_responses(path, limit_per_intent=2)
    assert [(a.article_id, a.body) for a in got] == [
        ("bitext-track-order-1", "Track your order number on our website."),
        ("bitext-track-order-2", "Open Order History in our website."),
        ("bitext-get-refund-1", "Call our customer support phone line."),
    ]
    with pytest.raises(DataError, match="at least 1"):
        bitext_responses(path, limit_per_intent=0)
    with pytest.raises(DataError, match="not found"):
        bitext_responses(tmp_path / "missing.csv")


def test_abcd_on_a_small_file_and_errors(tmp_path: Path) -> None:
    spec = {"Shipping Issue": {"description": "shipping", "subflows": {"Missing Item": {
        "actions": [
            {"type": "interaction", "button": "B", "text": "Ask for the  order ID", "subtext": []},
            {"type": "faq/policy", "button": "P", "text": "Check the rule",
             "subtext": ["Gold: always", "Guest: 30 days"]},
        ],
        "instructions": ["Start politely.", "End politely."],
    }}}}
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec))
    [a] = abcd_guidelines(path)
    assert a.body == (
        "Flow: shipping. Start politely.\n\n## Steps\n1. Ask for the order ID\n"
        "2. Check the rule (see Policy below)\n\n## Policy\nCheck the rule\n- Gold: always\n"
        "- Guest: 30 days\n\n## Notes\nEnd politely."
    )
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected an object"):
        abcd_guidelines(path)
    with pytest.raises(DataError, match="not found"):
        abcd_guidelines(tmp_path / "none.json")


def test_placeholders_and_shared_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert clean_placeholders("see {{ Invoices }} or {{Bill Number Anonymized}}") == (
        "see Invoices or your bill number"
    )
    monkeypatch.setenv("AFTERCARE_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("AFTERCARE_SHARED_DATA")
    assert shared_data_dir(Path("/repo")) == Path("/shared/data")
