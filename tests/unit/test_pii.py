"""PII detector: metrics on tests/data/pii_messages.jsonl, validators, look-alikes, allow list."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from server.governance.pii import KINDS, PiiDetector, PiiSpan, iban_ok, luhn_ok, redact

DATA = Path(__file__).resolve().parents[1] / "data" / "pii_messages.jsonl"


def load_rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


def luhn_reference(number: str) -> bool:
    # Textbook form: double every second digit from the right, sum the digits of each.
    digits = [int(c) for c in number][::-1]
    total = 0
    for i, d in enumerate(digits):
        if i % 2:
            d *= 2
            total += d // 10 + d % 10
        else:
            total += d
    return total % 10 == 0


@pytest.fixture(scope="module")
def detector() -> PiiDetector:
    return PiiDetector()


def test_dataset_shape() -> None:
    rows = load_rows()
    assert len(rows) >= 200
    assert sum(1 for r in rows if not r["pii"]) >= 40
    for r in rows:
        for s in r["pii"]:
            assert s["kind"] in KINDS
            assert 0 <= s["start"] < s["end"] <= len(r["text"])
            assert r["text"][s["start"] : s["end"]] == r["text"][s["start"] : s["end"]].strip()


def test_recall_and_precision_per_kind(detector: PiiDetector) -> None:
    tp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    pred_ok: Counter[str] = Counter()
    pred_all: Counter[str] = Counter()
    for r in load_rows():
        text, gold = r["text"], r["pii"]
        pred = detector.detect(text)
        for g in gold:
            covered = any(
                p.kind == g["kind"] and p.start <= g["start"] and p.end >= g["end"] for p in pred
            )
            (tp if covered else fn)[g["kind"]] += 1
        for p in pred:
            pred_all[p.kind] += 1
            if any(p.kind == g["kind"] and p.start < g["end"] and g["start"] < p.end for g in gold):
                pred_ok[p.kind] += 1
    report = {
        k: {
            "recall": round(tp[k] / max(1, tp[k] + fn[k]), 4),
            "precision": round(pred_ok[k] / max(1, pred_all[k]), 4),
            "support": tp[k] + fn[k],
        }
        for k in KINDS
    }
    print("PII metrics:", json.dumps(report))
    for kind in ("CARD", "IBAN", "EMAIL", "PHONE"):
        assert report[kind]["support"] >= 20, kind
        assert report[kind]["recall"] >= 0.99, (kind, report[kind])
    for kind in ("ADDRESS", "GOV_ID"):
        assert report[kind]["recall"] >= 0.9, (kind, report[kind])
    for kind in KINDS:
        assert report[kind]["precision"] >= 0.95, (kind, report[kind])


def test_no_pii_rows_stay_untouched(detector: PiiDetector) -> None:
    for r in load_rows():
        if not r["pii"]:
            red = detector.redact(r["text"])
            assert red.spans == [] and red.text == r["text"], r["text"]


def test_redaction_holds_no_raw_values(detector: PiiDetector) -> None:
    for r in load_rows():
        text = r["text"]
        red = detector.redact(text)
        encoded = msgspec.json.encode(red).decode()
        for g in r["pii"]:
            raw = text[g["start"] : g["end"]]
            assert raw not in red.text
            assert json.dumps(raw)[1:-1] not in encoded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail: anna.schmidt@web.de.", "Mail: [EMAIL]."),
        ("call +44 20 7946 0958 now", "call [PHONE] now"),
        ("(555) 123-4567", "[PHONE]"),
        ("0049 30 1234567 or 06 12 34 56 78", "[PHONE] or [PHONE]"),
        ("card 4111-1111-1111-1111 ok", "card [CARD] ok"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "IBAN [IBAN]."),
        ("GB82WEST12345698765432", "[IBAN]"),
        ("at 221B Baker St. tonight", "at [ADDRESS] tonight"),
        ("Hauptstraße 5, Berlin", "[ADDRESS], Berlin"),
        ("ssn 123-45-6789", "ssn [GOV_ID]"),
        ("NINO AB 12 34 56 C", "NINO [GOV_ID]"),
        ("DNI 12345678Z", "DNI [GOV_ID]"),
    ],
)
def test_redact_examples(detector: PiiDetector, text: str, expected: str) -> None:
    assert detector.redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "Order A10023, #458812 and 113542617735902 (fails Luhn)",
        "SKU-PH-0012 costs €1,299.00, or 1.299,00 € in Germany",
        "Delivered 2026-11-15 / 15/11/2026 at 14:30; 3 x 250 ml",
        "Tracking 1Z999AA10123456784 and 9400 1000 0000 0000 0000 00",
        "4111 1111 1111 1112 is a typo that fails Luhn",
        "DE89 3704 0044 0532 0130 01 has a wrong check digit",
        "SSN 666-12-3456 and 000-12-3456 are never issued",
        "DNI 12345678A has the wrong letter",
        "My order number 4155552671 arrived",  # bare digits without a phone word
    ],
)
def test_lookalikes_survive(detector: PiiDetector, text: str) -> None:
    assert detector.detect(text) == []


def test_allow_list_keeps_customer_ids(detector: PiiDetector) -> None:
    text = "Order 4929731275936284 and card 4929731275936284"
    assert [s.kind for s in detector.detect(text)] == ["CARD", "CARD"]
    assert detector.detect(text, allow={"4929731275936284"}) == []


def test_spans_are_in_original_offsets(detector: PiiDetector) -> None:
    text = "a@b.io then +33 6 12 34 56 78"
    red = redact(text, detector=detector)
    assert red.spans == [PiiSpan("EMAIL", 0, 6), PiiSpan("PHONE", 12, len(text))]
    assert red.text == "[EMAIL] then [PHONE]"
    assert red.kinds == ["EMAIL", "PHONE"]


def test_validators_match_references() -> None:
    import random

    rng = random.Random(7)
    for _ in range(2000):
        number = "".join(str(rng.randrange(10)) for _ in range(rng.randrange(12, 20)))
        assert luhn_ok(number) == luhn_reference(number)
    assert iban_ok("DE89370400440532013000")
    assert iban_ok("GB82WEST12345698765432")
    assert not iban_ok("GB82WEST12345698765433")
    assert not iban_ok("DE8937040044053201300")  # one char short for DE
    assert not iban_ok("XX89370400440532013000")
