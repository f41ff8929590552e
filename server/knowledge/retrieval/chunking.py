"""Chunking of help articles and policies into retrieval passages.

A document is split into sections at markdown headings, sections into paragraphs,
and paragraphs are packed into chunks of about `max_words` words. A heading is
repeated at the top of every chunk of its section, consecutive chunks of one
section share `overlap` words, and small consecutive sections are merged while
they fit whole. Ids are stable (`f"{source_id}#{n}"`) and the output depends only
on the input, so the same snapshot always yields the same chunks and digest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import msgspec

from server.errors import DataError
from server.knowledge.shop.schema import Article, Policy

KINDS = ("article", "policy", "guideline", "faq")
DEFAULT_MAX_WORDS = 120
DEFAULT_OVERLAP = 20

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+\S")

MetaValue = str | tuple[str, ...]


class Chunk(msgspec.Struct, frozen=True):
    """One retrievable passage of a document."""

    id: str  # f"{source_id}#{n}", n counting from 0 in document order
    source_id: str  # the article_id or policy_id
    kind: str  # one of KINDS
    title: str  # the document title
    text: str  # the passage, with its section heading on the first line when it has one
    # Filterable attributes: doc_type, locale (str); categories, product_ids, tags (tuples).
    metadata: dict[str, MetaValue] = {}

    def embedding_text(self) -> str:
        """The text to embed: the title gives each passage its document's context."""
        return f"{self.title}\n\n{self.text}"


class _Section(msgspec.Struct):
    heading: str  # "" when the text before the first heading has none
    paragraphs: list[str]


def _sections(body: str) -> list[_Section]:
    sections: list[_Section] = [_Section("", [])]
    lines: list[str] = []

    def end_paragraph() -> None:
        if lines:
            sections[-1].paragraphs.append("\n".join(lines))
            lines.clear()

    for raw in body.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if _HEADING.match(raw):
            end_paragraph()
            sections.append(_Section(line, []))
        elif not line:
            end_paragraph()
        else:
            lines.append(line)
    end_paragraph()
    # A heading with no text under it carries no answer; drop it and empty preambles.
    return [s for s in sections if s.paragraphs]


def _word_count(text: str) -> int:
    return len(text.split())


def _windows(paragraphs: Sequence[str], budget: int, overlap: int) -> list[str]:
    """Slide a `budget`-word window over the paragraphs' words, `overlap` words shared.

    A window ends at a paragraph boundary when one lies in its second half, so chunks
    rarely cut a paragraph that would have fit.
    """
    words: list[str] = []
    para_of: list[int] = []
    for n, para in enumerate(paragraphs):
        split = para.split()
        words.extend(split)
        para_of.extend([n] * len(split))
    out: list[str] = []
    start = 0
    while True:
        end = min(start + budget, len(words))
        if end < len(words):
            for cut in range(end, start + budget // 2, -1):
                if para_of[cut] != para_of[cut - 1]:
                    end = cut
                    break
        parts: list[list[str]] = []
        for i in range(start, end):
            if i == start or para_of[i] != para_of[i - 1]:
                parts.append([])
            parts[-1].append(words[i])
        out.append("\n\n".join(" ".join(p) for p in parts))
        if end == len(words):
            return out
        start = max(end - overlap, start + 1)


def chunk_text(
    body: str, max_words: int = DEFAULT_MAX_WORDS, overlap: int = DEFAULT_OVERLAP
) -> list[str]:
    """Split markdown-ish `body` into passage texts; see the module docstring."""
    if max_words < 8 or not 0 <= overlap <= max_words // 2:
        raise ValueError(f"bad chunk budget: max_words={max_words}, overlap={overlap}")
    out: list[str] = []
    pending: list[str] = []  # whole small sections waiting to be merged
    pending_words = 0

    def flush_pending() -> None:
        nonlocal pending_words
        if pending:
            out.append("\n\n".join(pending))
            pending.clear()
            pending_words = 0

    for section in _sections(body):
        head_words = _word_count(section.heading)
        whole = "\n\n".join(
            [section.heading, *section.paragraphs] if section.heading else section.paragraphs
        )
        whole_words = _word_count(whole)
        if whole_words <= max_words:
            if pending_words + whole_words > max_words:
                flush_pending()
            pending.append(whole)
            pending_words += whole_words
            continue
        flush_pending()
        # A long section: windows over its words, the heading on top of each.
        budget = max(max_words - head_words, overlap + 8)
        for text in _windows(section.paragraphs, budget, overlap):
            out.append(f"{section.heading}\n\n{text}" if section.heading else text)
    flush_pending()
    return out


def _make_chunks(
    source_id: str,
    kind: str,
    title: str,
    body: str,
    metadata: dict[str, MetaValue],
    max_words: int,
    overlap: int,
) -> list[Chunk]:
    return [
        Chunk(
            id=f"{source_id}#{n}",
            source_id=source_id,
            kind=kind,
            title=title,
            text=text,
            metadata=metadata,
        )
        for n, text in enumerate(chunk_text(body, max_words, overlap))
    ]


def chunk_article(
    article: Article, max_words: int = DEFAULT_MAX_WORDS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Chunks of one help article; its doc_type becomes the chunk kind."""
    if article.doc_type not in KINDS:
        raise DataError(f"article {article.article_id!r}: unknown doc_type {article.doc_type!r}")
    metadata: dict[str, MetaValue] = {
        "doc_type": article.doc_type,
        "locale": article.locale,
        "categories": tuple(article.categories),
        "product_ids": tuple(article.product_ids),
        "tags": tuple(article.tags),
    }
    return _make_chunks(
        article.article_id,
        article.doc_type,
        article.title,
        article.body,
        metadata,
        max_words,
        overlap,
    )


def chunk_policy(
    policy: Policy, max_words: int = DEFAULT_MAX_WORDS, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    """Chunks of one policy; `applies_to` becomes its category unless it is "*" (everything)."""
    metadata: dict[str, MetaValue] = {
        "doc_type": "policy",
        "locale": "en",  # Policy has no locale field; the shop's policies are English
        "categories": () if policy.applies_to in ("", "*") else (policy.applies_to,),
        "product_ids": (),
        "tags": (),
    }
    return _make_chunks(
        policy.policy_id, "policy", policy.title, policy.text, metadata, max_words, overlap
    )


def chunk_corpus(
    articles: Iterable[Article],
    policies: Iterable[Policy],
    max_words: int = DEFAULT_MAX_WORDS,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    """All chunks of a snapshot's documents; a source id used twice is a DataError."""
    articles, policies = list(articles), list(policies)
    ids = [a.article_id for a in articles] + [p.policy_id for p in policies]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise DataError(f"document ids used twice among articles and policies: {twice[:5]}")
    chunks = [c for a in articles for c in chunk_article(a, max_words, overlap)]
    chunks.extend(c for p in policies for c in chunk_policy(p, max_words, overlap))
    return chunks


def chunks_digest(chunks: Iterable[Chunk]) -> str:
    """Content hash of chunk ids, texts and metadata, independent of their order."""
    h = hashlib.blake2b(digest_size=16)
    for chunk in sorted(chunks, key=lambda c: c.id):
        h.update(
            msgspec.msgpack.encode((chunk.id, chunk.kind, chunk.title, chunk.text, chunk.metadata))
        )
    return h.hexdigest()
