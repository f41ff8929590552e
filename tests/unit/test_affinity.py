"""Intent affinity: learned from the documents' classified titles and tags (and past
citations), and how it ranks passages."""

from __future__ import annotations

import numpy as np
import pytest

from server.knowledge.retrieval.affinity import (
    IntentAffinity,
    learn,
    learn_from_documents,
    merge,
    plan,
    probe_text,
)
from server.knowledge.retrieval.retriever import Passage

LABELS = ["missing_package", "return_item", "praise"]
IDS = ["hc-where-is-it", "hc-send-back", "hc-about-us"]
PROBS = np.array([[0.90, 0.05, 0.05],   # p(intent | document), rows = IDS
                  [0.10, 0.80, 0.10],
                  [0.30, 0.30, 0.40]], dtype=np.float32)


def test_each_intent_keeps_its_best_documents_above_the_floor() -> None:
    aff = learn(IDS, PROBS, LABELS, per_intent=2, min_weight=0.25)
    assert aff.for_intent("missing_package") == [("hc-where-is-it", 0.9),
                                                 ("hc-about-us", 0.3)]
    assert aff.for_intent("return_item") == [("hc-send-back", 0.8), ("hc-about-us", 0.3)]
    assert aff.for_intent("praise") == [("hc-about-us", 0.4)]
    assert aff.for_intent("unknown") == [] and aff.documents == 3
    strict = learn(IDS, PROBS, LABELS, per_intent=1, min_weight=0.5)
    assert set(strict.by_intent) == {"missing_package", "return_item"}
    with pytest.raises(ValueError, match="expected"):
        learn(IDS[:2], PROBS, LABELS)


def test_past_citations_move_an_intent_towards_what_answered_it() -> None:
    # Many past `praise` conversations were answered with the returns page (a shop
    # whose "thank you" page is its returns page, say): the evidence outweighs the title.
    cited = learn(IDS, PROBS, LABELS, per_intent=1, min_weight=0.0,
                  citations={("praise", "hc-send-back"): 80, ("praise", "gone"): 5})
    assert cited.for_intent("praise")[0][0] == "hc-send-back"
    # Little evidence moves little: 2 citations against a prior of 20.
    weak = learn(IDS, PROBS, LABELS, per_intent=1, min_weight=0.0,
                 citations={("praise", "hc-send-back"): 2})
    assert weak.for_intent("praise")[0][0] == "hc-about-us"
    assert cited.for_intent("missing_package") == [("hc-where-is-it", 0.9)]


def _p(pid: str, source: str, score: float, kind: str = "article") -> Passage:
    return Passage(pid, source, kind, source, "text", score)


def test_plan_searches_each_kind_and_each_fitting_document() -> None:
    aff = IntentAffinity({"missing_package": [("hc-where-is-it", 0.9)]})
    assert plan(["article", "policy"], 3, "missing_package", aff, {"missing_package": "lost"}) == [
        (3, {"kind": "article"}, 0.0), (3, {"kind": "policy"}, 0.0),
        (1, {"source_id": "hc-where-is-it"}, 0.9), (3, {"kind": "article", "tag": "lost"}, 1.0)]
    assert plan(["policy"], 2, "praise", None, {"praise": "x"}) == [(2, {"kind": "policy"}, 0.0)]


def test_merge_ranks_fitting_documents_up_and_keeps_the_floor_and_kinds() -> None:
    requests = plan(["article"], 2, "missing_package",
                    IntentAffinity({"missing_package": [("hc-where-is-it", 0.9),
                                                        ("guide-x", 0.8)]}))
    hits = [[_p("a#0", "hc-delivery-times", 0.62), _p("b#0", "hc-send-back", 0.55)],
            [_p("w#0", "hc-where-is-it", 0.52)],
            [_p("g#0", "guide-x", 0.9, kind="guideline")]]  # not quotable in Respond
    ranked = merge(requests, hits, kinds=["article"], boost=0.15, min_score=0.3, top_k=2)
    assert [(p.id, round(s, 3)) for s, p in ranked] == [("w#0", 0.655), ("a#0", 0.62)]
    assert ranked[0][1].score == 0.52  # the passage keeps its cosine for the record
    without = merge(requests[:1], hits[:1], kinds=["article"], boost=0.15, min_score=0.3,
                    top_k=2)
    assert [p.id for _, p in without] == ["a#0", "b#0"]
    floor = merge(requests, [[], [_p("w#0", "hc-where-is-it", 0.2)], []], kinds=["article"],
                  boost=0.15, min_score=0.3, top_k=2)
    assert floor == []  # a weak match is not quoted, however well it fits the intent


async def test_learning_from_documents_asks_the_classifier_about_titles_and_tags() -> None:
    asked: list[list[str]] = []

    async def classify(texts: list[str]) -> tuple[list[str], np.ndarray, str]:
        asked.append(texts)
        return LABELS, PROBS[: len(texts)], "clf/3"

    docs = [("hc-where-is-it", "article", "Where is my parcel?", ("bitext", "shipments")),
            ("hc-send-back", "article", "Sending things back", ("rma",)),
            ("pol-x", "guideline", "Agent guide", ()),
            ("hc-empty", "article", " ", ())]
    aff = await learn_from_documents(docs, classify, ["article"], per_intent=1)
    assert asked == [["Where is my parcel?. shipments", "Sending things back. rma"]]
    assert aff.classifier_version == "clf/3" and aff.documents == 2
    assert aff.for_intent("return_item") == [("hc-send-back", 0.8)]
    assert probe_text("Returns", ("abcd", "store_credit", "gift-cards")) == \
        "Returns. store credit, gift cards"
    assert (await learn_from_documents([], classify, ["article"])).by_intent == {}
