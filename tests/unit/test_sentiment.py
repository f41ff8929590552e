"""Sentiment scorer and legal/safety cue detectors."""

from __future__ import annotations

import pytest

from server.governance.sentiment import SentimentScorer


@pytest.fixture(scope="module")
def scorer() -> SentimentScorer:
    return SentimentScorer()


def test_neutral_is_zero(scorer: SentimentScorer) -> None:
    s = scorer.score("Where is my order A10023?")
    assert s.score == 0.0 and s.flags == [] and s.legal_threat == [] and s.safety_issue == []


def test_polarity(scorer: SentimentScorer) -> None:
    assert scorer.score("Great service, thank you!").score > 0.5
    assert scorer.score("Terrible service, very disappointed").score < -0.5


def test_range_is_bounded(scorer: SentimentScorer) -> None:
    worst = scorer.score("WORST!!! " * 50 + "fucking useless awful scam " * 20)
    best = scorer.score("amazing perfect wonderful " * 50)
    assert -1.0 <= worst.score < -0.99 and 0.99 < best.score <= 1.0


def test_negation_flips(scorer: SentimentScorer) -> None:
    good, not_good = scorer.score("It is good"), scorer.score("It is not good")
    bad, not_bad = scorer.score("It is bad"), scorer.score("It isn't bad")
    assert good.score > 0 > not_good.score and abs(not_good.score) < good.score
    assert bad.score < 0 < not_bad.score
    assert "negation" in not_good.flags and "negation" in not_bad.flags


def test_intensifiers_and_diminishers(scorer: SentimentScorer) -> None:
    plain = scorer.score("I am disappointed").score
    strong = scorer.score("I am extremely disappointed")
    weak = scorer.score("I am slightly disappointed").score
    assert strong.score < plain < weak < 0
    assert "intensifier" in strong.flags


def test_caps_and_exclamations(scorer: SentimentScorer) -> None:
    base = scorer.score("this is ridiculous").score
    caps = scorer.score("this is RIDICULOUS")
    shout = scorer.score("THIS IS RIDICULOUS")
    bangs = scorer.score("this is ridiculous!!!")
    assert caps.score < base and "all_caps" in caps.flags
    assert shout.score < base and "all_caps" in shout.flags
    assert bangs.score < base and "exclamations" in bangs.flags
    assert "all_caps" not in scorer.score("My TV from LG is fine").flags
    assert scorer.score("Thanks so much!!!").score > scorer.score("Thanks so much").score


def test_profanity(scorer: SentimentScorer) -> None:
    s = scorer.score("where the hell is my damn parcel")
    assert "profanity" in s.flags and s.score < -0.5


def test_frustration_phrases(scorer: SentimentScorer) -> None:
    s = scorer.score("I am still waiting, third time I write")
    assert "frustration" in s.flags and s.score < -0.6


def test_but_clause_weighs_more(scorer: SentimentScorer) -> None:
    assert scorer.score("The product is good but the delivery was terrible").score < 0
    assert scorer.score("The delivery was terrible but the product is great").score > 0


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("I'll get a lawyer", "lawyer"),
        ("we will sue you", "sue"),
        ("I'm filing a chargeback with my bank", "chargeback"),
        ("see you in small claims", "small_claims"),
        ("I'm reporting this to consumer protection", "consumer_protection"),
    ],
)
def test_legal_cues(scorer: SentimentScorer, text: str, cue: str) -> None:
    assert cue in scorer.score(text).legal_threat


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("the heater caught fire", "fire"),
        ("smoke came out of the charger", "smoke"),
        ("my daughter got burned by the kettle", "burn"),
        ("I got an electric shock from the lamp", "electric_shock"),
        ("my husband was injured by the blade", "injury"),
        ("the toy is a choking hazard, my son swallowed a piece", "choking"),
    ],
)
def test_safety_cues(scorer: SentimentScorer, text: str, cue: str) -> None:
    assert cue in scorer.score(text).safety_issue


@pytest.mark.parametrize(
    "text",
    [
        "Is the fireplace screen in stock?",
        "Where do I use the voucher?",
        "The court shoes arrived",
        "My order is delayed",
    ],
)
def test_no_false_cues(scorer: SentimentScorer, text: str) -> None:
    s = scorer.score(text)
    assert s.legal_threat == [] and s.safety_issue == []
