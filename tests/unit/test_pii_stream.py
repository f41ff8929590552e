"""Every PII test message, streamed through the guard in random and exhaustive splits.

The guard must emit no raw PII substring whatever the split, and the streamed output
must equal the one-shot redaction of the whole message.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import msgspec
import pytest

from server.governance.guard import OutputChecks, StreamGuard
from server.governance.pii import PiiDetector
from server.governance.policy import Policy, load_policy

DATA = Path(__file__).resolve().parents[1] / "data" / "pii_messages.jsonl"


@pytest.fixture(scope="module")
def rules() -> OutputChecks:
    # Promise/phrase blocks off: this file checks PII only, so no message may stop early.
    base = load_policy()
    policy: Policy = msgspec.structs.replace(
        base,
        promises=msgspec.structs.replace(base.promises, max_refund_statement=1e12),
        output=msgspec.structs.replace(base.output, competitors=[], banned_phrases=[]),
    )
    return OutputChecks(policy, PiiDetector())


def stream(rules: OutputChecks, pieces: list[str]) -> str:
    guard = StreamGuard(rules.policy, None, (), rules=rules)
    out = []
    for piece in pieces:
        step = guard.feed(piece)
        assert not step.stop
        out.append(step.emit)
    step = guard.finish()
    assert not step.stop
    out.append(step.emit)
    return "".join(out)


def rows() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line]


def random_split(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randrange(1, 12))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def test_random_splits_never_leak(rules: OutputChecks) -> None:
    rng = random.Random(1115)
    for r in rows():
        text = r["text"]
        expected = rules.detector.redact(text).text
        raws = [text[g["start"] : g["end"]] for g in r["pii"]]
        for _ in range(6):
            out = stream(rules, random_split(text, rng))
            assert out == expected, (text, out)
            for raw in raws:
                assert raw not in out


def test_every_split_inside_pii_never_leaks(rules: OutputChecks) -> None:
    # Filler around the message so the first piece is past the holdback and really
    # gets checked with the PII cut in two at its end.
    pad = "We looked into this and here is what we found for you today. " * 3
    for r in rows():
        text = pad + r["text"] + " " + pad
        expected = rules.detector.redact(text).text
        raws = [r["text"][g["start"] : g["end"]] for g in r["pii"]]
        points = {len(pad) + p for g in r["pii"] for p in range(g["start"], g["end"] + 1)}
        for k in sorted(points):
            guard = StreamGuard(rules.policy, None, (), rules=rules)
            first = guard.feed(text[:k]).emit
            assert expected.startswith(first)
            assert not any(raw in first for raw in raws)
            rest = guard.feed(text[k:]).emit + guard.finish().emit
            assert first + rest == expected, (text, k)


def test_char_by_char(rules: OutputChecks) -> None:
    all_rows = rows()
    for i in range(0, 60, 4):
        text = "\n".join(r["text"] for r in all_rows[i : i + 4])
        assert stream(rules, list(text)) == rules.detector.redact(text).text


def test_long_streams_emit_early_and_never_leak(rules: OutputChecks) -> None:
    # Messages joined into long answers, so most text leaves before finish().
    rng = random.Random(42)
    all_rows = rows()
    for i in range(0, len(all_rows), 6):
        group = all_rows[i : i + 6]
        text = "\n".join(r["text"] for r in group)
        raws = [r["text"][g["start"] : g["end"]] for r in group for g in r["pii"]]
        expected = rules.detector.redact(text).text
        for _ in range(4):
            guard = StreamGuard(rules.policy, None, (), rules=rules)
            early = []
            for piece in random_split(text, rng):
                early.append(guard.feed(piece).emit)
            out = "".join(early) + guard.finish().emit
            assert out == expected
            assert len("".join(early)) >= len(expected) - 3 * rules.holdback
            for raw in raws:
                assert raw not in out
