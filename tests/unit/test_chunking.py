"""Chunking: headings stay with their sections, overlap, budgets, stable ids, digests."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from server.errors import DataError
from server.knowledge.retrieval.chunking import (
    chunk_article,
    chunk_corpus,
    chunk_policy,
    chunk_text,
    chunks_digest,
)
from server.knowledge.shop.schema import Article, Policy


def _words(prefix: str, n: int) -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


LONG_BODY = (
    "Welcome to the returns guide.\n\n"
    f"## Returning an item\n\n{_words('a', 100)}\n\n{_words('b', 90)}\n\n"
    "## Refund timing\n\nRefunds arrive within five days.\n\n"
    "## Exchanges\n\nExchanges are free."
)


def test_short_body_is_one_chunk_with_headings() -> None:
    body = "## Shipping\n\nWe ship in two days.\n\n## Tracking\n\nTrack it online."
    assert chunk_text(body, 120, 20) == [body]


def test_every_chunk_of_a_long_section_starts_with_its_heading() -> None:
    chunks = chunk_text(LONG_BODY, 60, 10)
    section = [c for c in chunks if "a0" in c or "a50" in c or "b0" in c or "b80" in c]
    assert len(section) >= 3
    for text in section:
        assert text.startswith("## Returning an item\n\n")
    # Words of the long section all appear, in order, none lost between chunks.
    seen = [w for text in section for w in text.split()[4:]]
    for prefix, n in (("a", 100), ("b", 90)):
        ours = [w for w in seen if w[0] == prefix and w[1:].isdigit()]
        assert sorted(set(ours), key=lambda w: int(w[1:])) == _words(prefix, n).split()


def test_consecutive_chunks_of_a_section_overlap_by_the_budget() -> None:
    chunks = chunk_text(LONG_BODY, 60, 10)
    section = [c.split()[4:] for c in chunks if c.startswith("## Returning")]
    for prev, nxt in itertools.pairwise(section):
        assert prev[-10:] == nxt[:10]


def test_word_budget_is_respected() -> None:
    for max_words, overlap in ((60, 10), (120, 20), (30, 0)):
        for text in chunk_text(LONG_BODY, max_words, overlap):
            assert len(text.split()) <= max_words


def test_small_sections_merge_but_never_split_from_their_heading() -> None:
    chunks = chunk_text(LONG_BODY, 60, 10)
    assert chunks[0] == "Welcome to the returns guide."
    assert chunks[-1] == (
        "## Refund timing\n\nRefunds arrive within five days.\n\n"
        "## Exchanges\n\nExchanges are free."
    )
    # No chunk ends with a bare heading.
    for text in chunks:
        assert not text.rstrip().splitlines()[-1].startswith("#")


def test_window_prefers_paragraph_boundaries() -> None:
    body = f"{_words('p', 40)}\n\n{_words('q', 40)}\n\n{_words('r', 40)}"
    chunks = chunk_text(body, 60, 5)
    assert chunks[0] == _words("p", 40)  # stops at the paragraph end, not mid-q
    assert chunks[1].startswith(" ".join(_words("p", 40).split()[-5:]) + "\n\nq0")


def test_headings_without_text_and_empty_bodies_yield_nothing() -> None:
    assert chunk_text("", 120, 20) == []
    assert chunk_text("## Lonely heading\n\n   \n", 120, 20) == []


def test_bad_budgets_are_rejected() -> None:
    with pytest.raises(ValueError):
        chunk_text("x", 4, 0)
    with pytest.raises(ValueError):
        chunk_text("x", 100, 60)


def _article(article_id: str = "A-1", body: str = LONG_BODY, **kw: object) -> Article:
    return Article(
        article_id=article_id,
        title="Returns guide",
        body=body,
        tags=("returns",),
        product_ids=("SKU-1",),
        categories=("Electronics/Phones",),
        **kw,  # type: ignore[arg-type]
    )


def test_article_chunks_have_stable_ids_and_metadata() -> None:
    chunks = chunk_article(_article(), 60, 10)
    assert [c.id for c in chunks] == [f"A-1#{n}" for n in range(len(chunks))]
    assert chunks == chunk_article(_article(), 60, 10)  # deterministic
    first = chunks[0]
    assert first.kind == "article" and first.source_id == "A-1"
    assert first.metadata == {
        "doc_type": "article",
        "locale": "en",
        "categories": ("Electronics/Phones",),
        "product_ids": ("SKU-1",),
        "tags": ("returns",),
    }
    assert first.embedding_text() == f"Returns guide\n\n{first.text}"


def test_faq_kind_and_unknown_doc_type() -> None:
    assert chunk_article(_article(doc_type="faq"))[0].kind == "faq"
    with pytest.raises(DataError):
        chunk_article(_article(doc_type="blogpost"))


def test_policy_chunks() -> None:
    everywhere = Policy("POL-1", "Returns", "Thirty days to return.", "*", "v1")
    phones = Policy("POL-2", "Phone returns", "Fourteen days.", "Electronics/Phones", "v1")
    (c1,) = chunk_policy(everywhere)
    (c2,) = chunk_policy(phones)
    assert (c1.id, c1.kind, c1.metadata["categories"]) == ("POL-1#0", "policy", ())
    assert c2.metadata["categories"] == ("Electronics/Phones",)


def test_corpus_rejects_a_reused_id_and_digest_tracks_content() -> None:
    policy = Policy("A-1", "Clash", "text", "*", "v1")
    with pytest.raises(DataError):
        chunk_corpus([_article()], [policy])
    chunks = chunk_corpus([_article()], [Policy("POL-1", "Returns", "Thirty days.", "*", "v1")])
    digest = chunks_digest(chunks)
    assert digest == chunks_digest(list(reversed(chunks)))  # order-free
    edited = [*chunks[:-1], msgspec.structs.replace(chunks[-1], text="Sixty days.")]
    assert chunks_digest(edited) != digest
