"""Intent affinity of help-center documents, learned from the shop's own articles.

Respond ranks up the documents that fit the classified intent: the embedding alone
ranks short customer messages loosely against long articles. Which documents fit an
intent is learned per shop, not written by hand: each document's title and tags are
read like a customer message by the intent classifier, and p(intent | title, tags) is
the document's affinity to that intent. A help center whose titles say "My parcel says
delivered but I did not get it" gets it ranked up for `missing_package` without any
table. Where past conversations show which documents answered an intent (counts of
(intent, document) citations in accepted answers), they are blended in, weighted by how
much evidence there is.

Pure functions over arrays: the caller runs the classifier (`learn` takes its
probabilities) and the searches (`plan` says which, `merge` ranks what came back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from server.knowledge.retrieval.retriever import Passage

_TAG_NOISE = {"abcd", "bitext"}  # source markers, not topics
# texts -> (labels, probabilities [n, labels], classifier version)
ClassifyTexts = Callable[[list[str]], Awaitable[tuple[list[str], NDArray[np.float32], str]]]
Document = tuple[str, str, str, tuple[str, ...]]  # (source_id, kind, title, tags)


class IntentAffinity(msgspec.Struct, frozen=True):
    """intent -> [(source_id, weight in 0..1)], best first; what the weights came from."""

    by_intent: dict[str, list[tuple[str, float]]]
    classifier_version: str = ""
    documents: int = 0

    def for_intent(self, intent: str) -> list[tuple[str, float]]:
        return self.by_intent.get(intent, [])


def probe_text(title: str, tags: Sequence[str]) -> str:
    """How a document is put to the classifier: its title, then its topic tags."""
    topics = [t.replace("_", " ").replace("-", " ") for t in tags if t not in _TAG_NOISE]
    return f"{title}. {', '.join(topics)}" if topics else title


def learn(source_ids: Sequence[str], probabilities: NDArray[np.float32], labels: Sequence[str],
          *, per_intent: int = 3, min_weight: float = 0.25,
          citations: Mapping[tuple[str, str], int] | None = None, prior: float = 20.0,
          classifier_version: str = "") -> IntentAffinity:
    """The top `per_intent` documents per intent with weight >= `min_weight`.

    `probabilities[i, j]` = p(labels[j] | document i). With `citations`
    {(intent, source_id): count}, an intent's weights become
    (1 - a) * p + a * share of its citations, a = n / (n + prior) for n citations of it.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.shape != (len(source_ids), len(labels)):
        raise ValueError(f"probabilities are {probs.shape}, expected "
                         f"({len(source_ids)}, {len(labels)})")
    index = {sid: i for i, sid in enumerate(source_ids)}
    cited: dict[str, dict[int, int]] = {}
    for (intent, sid), n in (citations or {}).items():
        if sid in index and n > 0:
            cited.setdefault(intent, {})[index[sid]] = n
    by_intent: dict[str, list[tuple[str, float]]] = {}
    for j, intent in enumerate(labels):
        weights = probs[:, j].copy()
        counts = cited.get(intent)
        if counts:
            total = sum(counts.values())
            share = np.zeros(len(source_ids))
            for i, n in counts.items():
                share[i] = n / total
            a = total / (total + prior)
            weights = (1.0 - a) * weights + a * share
        order = np.argsort(-weights, kind="stable")[:per_intent]
        best = [(source_ids[i], round(float(weights[i]), 4)) for i in order
                if weights[i] >= min_weight]
        if best:
            by_intent[intent] = best
    return IntentAffinity(by_intent, classifier_version, len(source_ids))


async def learn_from_documents(documents: Sequence[Document], classify: ClassifyTexts,
                               kinds: Sequence[str], *, per_intent: int = 3,
                               min_weight: float = 0.25,
                               citations: Mapping[tuple[str, str], int] | None = None,
                               ) -> IntentAffinity:
    """Classify the title and tags of each document of `kinds`, then `learn` (with the
    confirmed past citations, when there are any)."""
    docs = [d for d in documents if d[1] in kinds and d[2].strip()]
    if not docs:
        return IntentAffinity({})
    labels, probs, version = await classify([probe_text(title, tags)
                                             for _, _, title, tags in docs])
    return learn([d[0] for d in docs], probs, labels, per_intent=per_intent,
                 min_weight=min_weight, citations=citations, classifier_version=version)


Request = tuple[int, dict[str, str], float]  # (top_k, filters, weight of the intent boost)


def plan(kinds: Sequence[str], top_k: int, intent: str, affinity: IntentAffinity | None,
         tags: Mapping[str, str] | None = None) -> list[Request]:
    """The searches for one message: the best `top_k` of each kind, plus each document
    that fits the intent (weighted by its affinity), plus a pinned tag when the shop
    set one in `retrieval.intent_tags`."""
    out: list[Request] = [(top_k, {"kind": kind}, 0.0) for kind in kinds]
    for sid, weight in affinity.for_intent(intent) if affinity else []:
        out.append((1, {"source_id": sid}, weight))
    tag = (tags or {}).get(intent, "")
    if tag and "article" in kinds:
        out.append((top_k, {"kind": "article", "tag": tag}, 1.0))
    return out


def merge(requests: Sequence[Request], hits: Sequence[Sequence[Passage]], *, kinds: Sequence[str],
          boost: float, min_score: float, top_k: int) -> list[tuple[float, Passage]]:
    """Rank the passages of every search by cosine + boost * weight (each passage at
    its best), drop those under `min_score` cosine or of a kind Respond may not quote,
    and keep the best `top_k`: (ranking score, passage with its cosine)."""
    best: dict[str, tuple[float, Passage]] = {}
    for (_, _, weight), found in zip(requests, hits, strict=True):
        for p in found:
            if p.score < min_score or p.kind not in kinds:
                continue
            score = p.score + boost * weight
            if p.id not in best or best[p.id][0] < score:
                best[p.id] = (score, p)
    ranked = sorted(best.values(), key=lambda sp: (-sp[0], sp[1].id))
    return ranked[:top_k]
