"""`aftercare bench pii`: our PII detector against Presidio's pattern recognizers.

Both run on tests/data/pii_messages.jsonl. Presidio gets a blank spaCy English
pipeline (no model download) and only pattern recognizers: email, phone, credit
card, IBAN, US SSN, UK NINO, ES NIF/NIE. Presidio has no pattern recognizer for
street addresses, so ADDRESS is reported for ours only. Metrics per kind: recall
(a gold span is overlapped by a prediction of the same kind), covered recall (fully
covered), precision (a prediction overlaps a gold span of the same kind); and
throughput in messages/s, measured in the same run. One JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from server.governance.pii import KINDS, PiiDetector

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pii_messages.jsonl"
# Presidio entity -> our kind.
PRESIDIO_KINDS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "GOV_ID",
    "UK_NINO": "GOV_ID",
    "ES_NIF": "GOV_ID",
    "ES_NIE": "GOV_ID",
}
Spans = list[tuple[str, int, int]]


def build_presidio(score_threshold: float = 0.3) -> Callable[[str], Spans]:
    """An AnalyzerEngine with a blank spaCy pipeline and pattern recognizers only."""
    import spacy
    import tldextract.tldextract as tld
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        EsNieRecognizer,
        EsNifRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UsSsnRecognizer,
    )

    class BlankSpacyEngine(SpacyNlpEngine):
        """Tokenizer only: spacy.blank('en'), nothing is downloaded."""

        def load(self) -> None:
            # Presidio annotates `nlp` as None until load(); this is its load().
            self.nlp = cast(Any, {"en": spacy.blank("en")})

    # Presidio's email check calls tldextract, which would fetch the public suffix
    # list over the network; use its bundled snapshot instead (no network here).
    tld.TLD_EXTRACTOR = tld.TLDExtract(cache_dir=None, suffix_list_urls=())
    engine = BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.load()
    regions = ("US", "GB", "FR", "DE", "NL", "ES", "IT", "BE", "AT", "CH", "IE")
    recognizers = [
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=regions),
        CreditCardRecognizer(),
        IbanRecognizer(),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        EsNifRecognizer(supported_language="en"),
        EsNieRecognizer(supported_language="en"),
    ]
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=["en"])
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    entities = list(PRESIDIO_KINDS)

    def detect(text: str) -> Spans:
        results = analyzer.analyze(
            text, language="en", entities=entities, score_threshold=score_threshold
        )
        return [(PRESIDIO_KINDS[r.entity_type], r.start, r.end) for r in results]

    return detect


def evaluate(rows: list[dict[str, Any]], detect: Callable[[str], Spans]) -> dict[str, Any]:
    hit: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    support: Counter[str] = Counter()
    pred_ok: Counter[str] = Counter()
    pred_all: Counter[str] = Counter()
    for row in rows:
        pred = detect(row["text"])
        gold = row["pii"]
        for g in gold:
            k, gs, ge = g["kind"], g["start"], g["end"]
            support[k] += 1
            hit[k] += any(pk == k and ps < ge and gs < pe for pk, ps, pe in pred)
            covered[k] += any(pk == k and ps <= gs and pe >= ge for pk, ps, pe in pred)
        for pk, ps, pe in pred:
            pred_all[pk] += 1
            pred_ok[pk] += any(pk == g["kind"] and ps < g["end"] and g["start"] < pe for g in gold)
    per_kind = {}
    for k in KINDS:
        per_kind[k] = {
            "support": support[k],
            "recall": round(hit[k] / support[k], 4) if support[k] else None,
            "recall_covered": round(covered[k] / support[k], 4) if support[k] else None,
            "precision": round(pred_ok[k] / pred_all[k], 4) if pred_all[k] else None,
            "predicted": pred_all[k],
        }
    return per_kind


def throughput(rows: list[dict[str, Any]], detect: Callable[[str], Spans], min_s: float) -> float:
    texts = [r["text"] for r in rows]
    for t in texts[:20]:  # warm caches (regex, phonenumbers metadata)
        detect(t)
    done, t0 = 0, time.perf_counter()
    while True:
        for t in texts:
            detect(t)
        done += len(texts)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_s:
            return done / elapsed


def run(data: str | Path | None = None, min_seconds: float = 1.0) -> dict[str, Any]:
    path = Path(data) if data is not None else DEFAULT_DATA
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    detector = PiiDetector()

    def ours(text: str) -> Spans:
        return [(s.kind, s.start, s.end) for s in detector.detect(text)]

    presidio = build_presidio()
    ours_mps = throughput(rows, ours, min_seconds)
    presidio_mps = throughput(rows, presidio, min_seconds)
    return {
        "bench": "pii",
        "messages": len(rows),
        "messages_with_pii": sum(1 for r in rows if r["pii"]),
        "ours": {"per_kind": evaluate(rows, ours), "messages_per_s": round(ours_mps, 1)},
        "presidio": {
            "per_kind": evaluate(rows, presidio),
            "messages_per_s": round(presidio_mps, 1),
            "recognizers": "pattern only, blank spaCy en; no ADDRESS recognizer",
        },
        "speed_ratio_ours_over_presidio": round(ours_mps / presidio_mps, 2),
    }


def _main(args: argparse.Namespace) -> int:
    result = run(args.data, args.min_seconds)
    for name in ("ours", "presidio"):
        side = result[name]
        print(f"{name}: {side['messages_per_s']} msg/s")
        for kind, m in side["per_kind"].items():
            print(
                f"  {kind:8s} recall={m['recall']} covered={m['recall_covered']} "
                f"precision={m['precision']} (n={m['support']})"
            )
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `pii` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "pii", help="PII detector vs Presidio pattern recognizers: recall, precision, speed"
    )
    parser.add_argument("--data", default=None, help="JSONL test set (default: the shipped one)")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="timing per detector")
    parser.set_defaults(func=_main)
    return parser


if __name__ == "__main__":
    top = argparse.ArgumentParser(prog="aftercare bench")
    register(top.add_subparsers(dest="bench", required=True))
    ns = top.parse_args()
    raise SystemExit(ns.func(ns))
