"""`aftercare bench affinity`: does the learned intent affinity find the right article
on a help center that is not the demo shop's?

Data, read from ../shared (never copied into the repository):
- queries: customer utterances of Bitext customer-support (CDLA-Sharing-1.0), a seeded
  sample stratified by intent; the right article for one is the article of its intent;
- help center: one article per Bitext intent, built from that intent's templated answer
  (title from the intent, tags intent + category; `adapters.bitext_responses`), plus
  the 55 ABCD guideline articles (MIT; `adapters.abcd_guidelines`) as further documents.
Neither was written for this project. Models: the served intent classifier (the demo
shop's 24 intents; it never saw Bitext) and embedder from models/repository, run the
way the server runs them (same ONNX files, max_length 128).

Each query is classified once and ranked as Respond ranks (`affinity.plan` + `merge`,
3 passages, cosine floor 0.3, boost 0.15) under four conditions, all in this run:
`embedding_only`; `hand_table` (the former built-in intent -> tag table, tuned to the
demo shop); `learned` (affinity from the articles' titles and tags); `learned_cited`
(plus the (intent, article) counts of "past conversations": a disjoint half of the
sample, as a shop's decision records would hold them). Reported: recall@3 and MRR per
condition and the ratios against `embedding_only`. One JSON object on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from models.repository import ModelRepository
from models.runtime import OnnxTextModel
from server.knowledge.retrieval import affinity
from server.knowledge.retrieval.affinity_eval import Condition, Query, citation_counts, evaluate
from server.knowledge.retrieval.retriever import Retriever
from server.knowledge.sources import adapters

# The hand table retrieval.intent_tags shipped with before the affinity was learned.
DEMO_INTENT_TAGS = {
    "order_status": "tracking", "cancel_order": "cancellation", "change_order": "change order",
    "return_item": "returns", "refund_status": "refunds", "damaged_item": "damaged",
    "wrong_item": "wrong item", "missing_package": "lost parcel", "warranty_claim": "warranty",
    "change_address": "address", "delivery_options": "delivery", "shipping_cost": "costs",
    "payment_problem": "payment issue", "invoice_request": "invoice", "account_access": "login",
    "delete_account": "privacy", "promo_code": "promo code", "complaint": "contact",
    "talk_to_human": "contact", "newsletter": "newsletter",
}
ROOT = Path(__file__).resolve().parents[1]


def _sample(csv_path: Path, answers: dict[str, frozenset[str]], per_intent: int, seed: int,
            ) -> tuple[list[Query], list[Query]]:
    """(past, test): `per_intent` distinct utterances per intent each, seeded; the right
    documents of an utterance are the articles of its intent (`answers`)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    with csv_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = (row["instruction"] or "").strip()
            if text and text not in by_intent[row["intent"]]:
                by_intent[row["intent"]].append(text)
    rng = random.Random(seed)
    past, test = [], []
    for intent in sorted(by_intent):
        texts = by_intent[intent][:]
        rng.shuffle(texts)
        right = answers[intent]
        test += [Query(t, right) for t in texts[:per_intent]]
        past += [Query(t, right) for t in texts[per_intent:2 * per_intent]]
    return past, test


def _batched(model: OnnxTextModel, texts: list[str], output: str) -> np.ndarray:
    rows = [model.run_batch(texts[i:i + 64])[output] for i in range(0, len(texts), 64)]
    return np.concatenate(rows).astype(np.float32)


async def measure(shared: Path, repo: Path, per_intent: int, seed: int) -> dict[str, Any]:
    repository = ModelRepository(repo)
    clf_v, emb_v = repository.latest("intent-classifier"), repository.latest("minilm-embedder")
    labels: list[str] = list(clf_v.manifest["labels"])
    clf = OnnxTextModel(clf_v.model_path, clf_v.tokenizer_path, 128, threads=1)
    emb = OnnxTextModel(emb_v.model_path, emb_v.tokenizer_path, 128, threads=1)

    articles = [msgspec.structs.replace(a, doc_type="article") for a in
                adapters.bitext_responses(shared / adapters.BITEXT_CSV, limit_per_intent=1)]
    answers: dict[str, frozenset[str]] = {}
    for a in articles:  # tags: ("bitext", intent, category)
        answers[a.tags[1]] = answers.get(a.tags[1], frozenset()) | {a.article_id}
    articles += [msgspec.structs.replace(a, doc_type="article") for a in
                 adapters.abcd_guidelines(shared / adapters.ABCD_GUIDELINES)]

    async def embed(texts: list[str]) -> np.ndarray:
        return _batched(emb, texts, "embedding")

    retriever = Retriever(embed, int(emb_v.manifest.get("embedding_dim", 384)))
    with tempfile.TemporaryDirectory() as tmp:
        await retriever.build_or_load(articles, [], Path(tmp), emb_v.name, "bench-affinity")

    # Each document's title and tags, classified once; learned with and without the
    # past conversations' citations.
    docs = [d for d in retriever.documents() if d[1] == "article"]
    probs = _batched(clf, [affinity.probe_text(t, g) for _, _, t, g in docs], "probabilities")
    ids = [d[0] for d in docs]
    learned = affinity.learn(ids, probs, labels)
    past, test = _sample(shared / adapters.BITEXT_CSV, answers, per_intent, seed)

    def intents_of(queries: list[Query]) -> tuple[list[str], np.ndarray]:
        texts = [q.text for q in queries]
        out = [clf.run_batch(texts[i:i + 64]) for i in range(0, len(texts), 64)]
        p = np.concatenate([o["probabilities"] for o in out])
        vectors = np.concatenate([o["embedding"] for o in out]).astype(np.float32)
        return [labels[int(i)] for i in p.argmax(axis=1)], vectors

    past_intents, _ = intents_of(past)
    test_intents, vectors = intents_of(test)
    cited = affinity.learn(ids, probs, labels, citations=citation_counts(past_intents, past))
    conditions = {"embedding_only": Condition(), "hand_table": Condition(tags=DEMO_INTENT_TAGS),
                  "learned": Condition(learned), "learned_cited": Condition(cited)}
    scores = await evaluate(test, test_intents, vectors, retriever, conditions)
    base = scores["embedding_only"]
    return {
        "bench": "affinity",
        "data": {"queries": "Bitext customer-support utterances (CDLA-Sharing-1.0)",
                 "help_center": "Bitext intent answers + ABCD guidelines (MIT)",
                 "articles": len(articles), "test_queries": len(test),
                 "past_queries": len(past), "per_intent": per_intent, "seed": seed},
        "classifier": clf_v.name + f"/{clf_v.version}",
        "learned_intents": len(learned.by_intent),
        "scores": {k: msgspec.to_builtins(v) for k, v in scores.items()},
        "recall_ratio_vs_embedding_only": {
            k: round(v.recall_at_k / base.recall_at_k, 4) if base.recall_at_k else None
            for k, v in scores.items()},
    }


def _cmd(args: argparse.Namespace) -> int:
    shared = Path(args.shared) if args.shared else adapters.shared_data_dir(ROOT)
    if not (shared / adapters.BITEXT_CSV).is_file():
        print(json.dumps({"bench": "affinity", "skipped": f"no Bitext data under {shared}"}))
        return 0
    result = asyncio.run(measure(shared, Path(args.repository), args.per_intent, args.seed))
    print(json.dumps(result))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("affinity", help="recall@3 with vs without the learned intent "
                              "affinity, on Bitext + ABCD")
    p.add_argument("--shared", default="", help="shared data dir (default ../shared/data)")
    p.add_argument("--repository", default=str(ROOT / "models" / "repository"))
    p.add_argument("--per-intent", type=int, default=30, help="test utterances per intent")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_cmd)
