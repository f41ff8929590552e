"""Frustration/sentiment scoring and legal-threat / safety-issue detection.

A small lexicon-and-rules scorer in the spirit of VADER, tuned for retail support:
word valences in [-4, 4], negation flips and damps the next three words, intensifiers
and diminishers scale, ALL-CAPS words and runs of "!" amplify, clauses after "but"
weigh more. The summed valence v maps to v / sqrt(v^2 + 15), a score in (-1, 1).
It never sees raw PII: the caller passes redacted text.
"""

from __future__ import annotations

import math
import re

import msgspec

_LEXICON: dict[str, float] = {
    # negative
    "angry": -3.0, "annoyed": -2.0, "annoying": -2.0, "awful": -3.0, "bad": -2.0,
    "broken": -2.0, "careless": -2.0, "complain": -1.5, "complaint": -1.5,
    "damaged": -2.0, "delay": -1.5, "delayed": -1.5, "disappointed": -2.5,
    "disappointing": -2.5, "disgusted": -3.0, "disgrace": -3.0, "fail": -2.0,
    "failed": -2.0, "frustrated": -2.5, "frustrating": -2.5, "furious": -3.5,
    "horrible": -3.0, "incompetent": -3.0, "joke": -1.5, "late": -1.0, "lied": -3.0,
    "lost": -1.5, "mess": -2.0, "missing": -1.5, "nightmare": -3.0, "pathetic": -3.0,
    "poor": -2.0, "problem": -1.0, "ridiculous": -3.0, "rubbish": -2.5, "rude": -2.5,
    "sad": -2.0, "scam": -3.5, "shocking": -2.5, "sucks": -2.5, "terrible": -3.0,
    "unacceptable": -3.0, "unhappy": -2.5, "upset": -2.5, "useless": -3.0, "waste": -2.0,
    "worst": -3.5, "wrong": -1.5, "hate": -3.0, "liar": -3.0, "liars": -3.0,
    # positive
    "amazing": 3.0, "appreciate": 2.0, "awesome": 3.0, "excellent": 3.0, "fantastic": 3.0,
    "fast": 1.5, "fine": 1.0, "friendly": 2.0, "glad": 2.0, "good": 2.0, "great": 3.0,
    "happy": 2.5, "helpful": 2.0, "love": 3.0, "lovely": 2.5, "nice": 2.0, "perfect": 3.0,
    "pleased": 2.0, "quick": 1.5, "satisfied": 2.0, "thank": 1.5, "thanks": 1.5,
    "wonderful": 3.0, "works": 1.0, "brilliant": 3.0, "recommend": 2.0,
}  # fmt: skip
_PHRASES: dict[str, float] = {
    "fed up": -3.0, "still waiting": -2.5, "still not": -2.0, "third time": -2.5,
    "second time": -1.5, "waste of time": -3.0, "no one": -1.5, "nobody": -1.5,
    "never again": -3.0, "last time": -1.5, "had enough": -3.0, "not happy": -2.5,
    "rip off": -3.5, "rip-off": -3.5, "sick of": -3.0, "thank you": 1.5,
}  # fmt: skip
_PROFANITY = frozenset(
    {"damn", "hell", "crap", "shit", "shitty", "fuck", "fucking", "fucked", "bullshit",
     "bloody", "wtf", "piss", "pissed", "bastard", "bastards", "arse", "ass", "sod"}
)  # fmt: skip
_NEGATORS = frozenset(
    {"not", "no", "never", "none", "nothing", "neither", "nor", "without", "hardly",
     "barely", "cannot", "dont", "doesnt", "didnt", "isnt", "wasnt", "arent", "werent",
     "wont", "cant", "couldnt", "shouldnt", "havent", "hasnt"}
)  # fmt: skip
_INTENSIFIERS = {
    "very": 1.4, "really": 1.4, "so": 1.3, "extremely": 1.7, "absolutely": 1.6,
    "totally": 1.5, "completely": 1.5, "utterly": 1.7, "incredibly": 1.6, "super": 1.4,
    "most": 1.3, "truly": 1.4, "beyond": 1.5,
}  # fmt: skip
_DIMINISHERS = {"slightly": 0.5, "somewhat": 0.6, "bit": 0.6, "little": 0.6, "kinda": 0.6}
_LEGAL = (
    ("lawyer", r"\b(?:lawyer|attorney|solicitor|legal action|legal team)s?\b"),
    ("sue", r"\b(?:sue|suing|sued|lawsuit|take you to court|see you in court)\b"),
    ("chargeback", r"\b(?:charge ?back|(?:dispute|reverse) the (?:charge|payment))\b"),
    ("small_claims", r"\bsmall claims\b"),
    ("consumer_protection", r"\b(?:consumer (?:protection|rights|association|ombudsman)"
                            r"|ombudsman|trading standards|verbraucherzentrale)\b"),
    ("regulator", r"\b(?:report you to|file a complaint with) (?:the )?"
                  r"(?:ftc|bbb|authorities|police|regulator)\b"),
)  # fmt: skip
_SAFETY = (
    ("fire", r"\b(?:caught fire|on fire|burst into flames|flames?|exploded|explosion"
             r"|melted|melting)\b"),
    ("smoke", r"\b(?:smok(?:e|ed|ing)|sparks?|sparking|burning smell"
              r"|smells? (?:of )?burn(?:ing|t)?)\b"),
    ("burn", r"\b(?:burn(?:ed|t|s)?|scald(?:ed)?)\b"),
    ("electric_shock", r"\b(?:electric(?:al)? shock|electrocuted|shocked me|got a shock)\b"),
    ("injury", r"\b(?:injur(?:ed|y|ies)|hurt (?:my|me|him|her|them)|cut (?:my|his|her) "
               r"(?:hand|finger)|bleeding|hospital|a&e|emergency room)\b"),
    ("choking", r"\b(?:chok(?:e|ed|ing)|swallowed|suffocat\w*)\b"),
    ("toxic", r"\b(?:poison(?:ed|ing|ous)?|toxic|allergic reaction|rash)\b"),
)  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z'’]*")
_BANGS = re.compile(r"!{2,}")


class Sentiment(msgspec.Struct, frozen=True):
    score: float  # in [-1, 1]; negative = frustrated
    flags: list[str]  # negation, intensifier, all_caps, exclamations, profanity, frustration
    legal_threat: list[str]  # ids of the legal cues found ("lawyer", "chargeback", ...)
    safety_issue: list[str]  # ids of the safety cues found ("fire", "choking", ...)


class SentimentScorer:
    """Holds compiled patterns; `score(text)` is pure and fast (no models)."""

    def __init__(self) -> None:
        self._phrases = [
            (re.compile(r"\b" + re.escape(p) + r"\b", re.IGNORECASE), v)
            for p, v in _PHRASES.items()
        ]
        self._legal = [(cue, re.compile(p, re.IGNORECASE)) for cue, p in _LEGAL]
        self._safety = [(cue, re.compile(p, re.IGNORECASE)) for cue, p in _SAFETY]

    def legal_threats(self, text: str) -> list[str]:
        return [cue for cue, rx in self._legal if rx.search(text)]

    def safety_issues(self, text: str) -> list[str]:
        return [cue for cue, rx in self._safety if rx.search(text)]

    def score(self, text: str) -> Sentiment:
        flags: set[str] = set()
        total = 0.0
        masked = text
        for rx, v in self._phrases:
            for m in rx.finditer(masked):
                total += self._phrase_weight(text, m.start(), v, flags)
                if v < 0:
                    flags.add("frustration")
            masked = rx.sub(lambda m: " " * len(m.group()), masked)
        words = [(m.group(), m.start()) for m in _WORD.finditer(masked)]
        lowered = [w.lower().replace("'", "").replace("’", "") for w, _ in words]
        but_at = next((i for i, w in enumerate(lowered) if w == "but"), None)
        for i, (word, _pos) in enumerate(words):
            low = lowered[i]
            if low in _PROFANITY:
                flags.add("profanity")
                total -= 2.0
                continue
            v = _LEXICON.get(low, 0.0)
            if v == 0.0:
                continue
            if len(word) > 2 and word.isupper() and not text.isupper():
                v *= 1.5
                flags.add("all_caps")
            for j in range(max(0, i - 3), i):
                prev = lowered[j]
                if prev in _INTENSIFIERS:
                    v *= _INTENSIFIERS[prev]
                    flags.add("intensifier")
                elif prev in _DIMINISHERS:
                    v *= _DIMINISHERS[prev]
            if any(lowered[j] in _NEGATORS for j in range(max(0, i - 3), i)):
                # "not good" is mildly negative, "not bad" mildly positive.
                v *= -0.6
                flags.add("negation")
            if but_at is not None:
                v *= 1.5 if i > but_at else 0.5
            total += v
        if text.isupper() and sum(c.isalpha() for c in text) >= 6:
            flags.add("all_caps")
            total *= 1.4 if total else 1.0
            total -= 0.5  # shouting is frustration even without lexicon words
        bangs = sum(len(m.group()) for m in _BANGS.finditer(text))
        if bangs:
            flags.add("exclamations")
            # Emphasis pushes the sign the text already has, negative when neutral.
            total += (-1.0 if total <= 0 else 1.0) * min(bangs, 6) * 0.3
        score = total / math.sqrt(total * total + 15.0)
        return Sentiment(
            score=round(max(-1.0, min(1.0, score)), 4),
            flags=sorted(flags),
            legal_threat=self.legal_threats(text),
            safety_issue=self.safety_issues(text),
        )

    @staticmethod
    def _phrase_weight(text: str, start: int, v: float, flags: set[str]) -> float:
        before = text[max(0, start - 20) : start].lower().split()[-2:]
        for w in before:
            if w in _INTENSIFIERS:
                flags.add("intensifier")
                return v * _INTENSIFIERS[w]
        return v
