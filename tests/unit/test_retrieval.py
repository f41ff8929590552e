"""Retriever end to end with a real hashing embedder: build, search, upsert, delete, persist."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgspec
import numpy as np
import pytest
from numpy.typing import NDArray

from server.errors import InvalidInput
from server.knowledge.retrieval.retriever import MANIFEST, Manifest, Retriever
from server.knowledge.retrieval.vector_index import HnswParams
from server.knowledge.shop.schema import Article, Policy

DIM = 256
_WORD = re.compile(r"[a-z0-9]+")


def hashed_words(text: str) -> NDArray[np.float32]:
    """Bag of words hashed into DIM signed buckets, L2-normalized (feature hashing)."""
    vector = np.zeros(DIM, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vector[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


class HashingEmbed:
    """Async embed function over `hashed_words` that records its calls."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def __call__(self, texts: list[str]) -> NDArray[np.float32]:
        self.calls.append(len(texts))
        return (
            np.stack([hashed_words(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)
        )


ARTICLES = [
    Article(
        "KB-1",
        "Return a phone",
        "## Return window\n\nPhones can be returned within 14 days of delivery.",
        categories=("Electronics/Phones",),
        product_ids=("SKU-P1",),
    ),
    Article(
        "KB-2",
        "Track your parcel",
        "## Tracking\n\nUse the tracking link in the shipping email to follow the parcel.",
        doc_type="faq",
    ),
    Article(
        "KB-3",
        "Blender warranty",
        "The blender has a two year warranty covering the motor.",
        categories=("Home/Kitchen",),
        locale="de",
    ),
    Article("KB-4", "Reset your password", "Click forgot password on the login page to reset it."),
]
POLICIES = [
    Policy("POL-1", "Refund policy", "Refunds are paid to the original card in 5 days.", "*", "v1")
]


async def _built(
    tmp_path: Path | None = None, snapshot: str = "snap-1"
) -> tuple[Retriever, HashingEmbed]:
    embed = HashingEmbed()
    retriever = Retriever(embed, DIM, HnswParams(M=8, ef_construction=64, ef=32), embed_batch=2)
    await retriever.build_or_load(ARTICLES, POLICIES, tmp_path, "hashing@1", snapshot)
    return retriever, embed


def test_hashing_embed_is_real_feature_hashing() -> None:
    a, b = hashed_words("track my parcel"), hashed_words("Parcel: track my?")
    assert np.allclose(a, b) and float(np.linalg.norm(a)) == pytest.approx(1.0)
    assert float(a @ hashed_words("reset my password")) < 0.9


async def test_search_finds_the_matching_passage_and_embeds_in_batches() -> None:
    retriever, embed = await _built()
    assert len(retriever) == 5
    assert embed.calls == [2, 2, 1]  # 5 chunks in batches of 2
    passages = await retriever.search("how do I track my parcel", top_k=3)
    assert passages[0].source_id == "KB-2" and passages[0].kind == "faq"
    assert passages[0].text.startswith("## Tracking")
    expected = float(
        hashed_words("how do I track my parcel")
        @ hashed_words(f"Track your parcel\n\n{passages[0].text}")
    )
    assert passages[0].score == pytest.approx(expected, abs=1e-5)
    assert len(passages) == 3 and passages[0].score >= passages[1].score >= passages[2].score
    assert len(await retriever.search("parcel")) == 5  # top_k 0 -> default 5


async def test_filters_reach_the_index() -> None:
    retriever, _ = await _built()
    hits = await retriever.search(
        "warranty return refund", top_k=10, filters={"category": "Electronics"}
    )
    assert [p.source_id for p in hits] == ["KB-1"]
    hits = await retriever.search("refund", top_k=10, filters={"kind": "policy"})
    assert [p.source_id for p in hits] == ["POL-1"]
    assert [p.source_id for p in await retriever.search("warranty", filters={"locale": "de"})] == [
        "KB-3"
    ]
    with pytest.raises(InvalidInput, match="unknown filter"):
        await retriever.search("refund", filters={"brand": "acme"})


@pytest.mark.parametrize("query", ["", "   \n"])
async def test_empty_query_is_invalid(query: str) -> None:
    retriever, _ = await _built()
    with pytest.raises(InvalidInput, match="empty"):
        await retriever.search(query)


@pytest.mark.parametrize("top_k", [-1, 51])
async def test_top_k_bounds(top_k: int) -> None:
    retriever, _ = await _built()
    with pytest.raises(InvalidInput, match="top_k"):
        await retriever.search("parcel", top_k=top_k)
    assert len(await retriever.search("parcel", top_k=50)) == 5


async def test_upsert_replaces_and_delete_removes() -> None:
    retriever, _ = await _built()
    version = retriever.version
    changed = Article(
        "KB-4", "Change your email", "Open account settings to change the email address."
    )
    assert await retriever.upsert(articles=[changed]) == 1
    assert retriever.version != version and len(retriever) == 5
    top = (await retriever.search("change email address account settings"))[0]
    assert (top.id, top.title) == ("KB-4#0", "Change your email")
    assert all(
        "password" not in p.text for p in await retriever.search("forgot password login", top_k=50)
    )
    # A longer document grows to more chunks; shrinking it back drops the stale ones.
    long_body = "\n\n".join(
        f"## Step {i}\n\n" + " ".join(["parcel"] * 60 + [f"step{i}"]) for i in range(3)
    )
    assert await retriever.upsert(articles=[Article("KB-2", "Long guide", long_body)]) == 3
    assert len(retriever) == 7
    await retriever.upsert(articles=[ARTICLES[1]])
    assert len(retriever) == 5
    assert {p.id for p in await retriever.search("parcel step1", top_k=50)} == {
        "KB-1#0",
        "KB-2#0",
        "KB-3#0",
        "KB-4#0",
        "POL-1#0",
    }
    assert await retriever.delete(["KB-2", "nope"]) == 1
    assert all(p.source_id != "KB-2" for p in await retriever.search("track parcel", top_k=50))
    assert len(retriever) == 4


async def test_persist_reload_and_rebuild_on_mismatch(tmp_path: Path) -> None:
    first, _ = await _built(tmp_path)
    manifest = msgspec.json.decode((tmp_path / MANIFEST).read_bytes(), type=Manifest)
    assert (manifest.count, manifest.embedder, manifest.snapshot_id, manifest.dim) == (
        5,
        "hashing@1",
        "snap-1",
        DIM,
    )
    assert (manifest.M, manifest.ef_construction, manifest.ef) == (8, 64, 32)
    query = "refund to my card"
    before = await first.search(query, top_k=5)

    again, embed2 = await _built(tmp_path)
    assert embed2.calls == [] and again.version == first.version  # loaded, nothing embedded
    assert await again.search(query, top_k=5) == before

    rebuilt, embed3 = await _built(tmp_path, snapshot="snap-2")  # new snapshot -> rebuild
    assert embed3.calls == [2, 2, 1]
    assert await rebuilt.search(query, top_k=5) == before

    other = Retriever(HashingEmbed(), DIM, HnswParams(M=12, ef_construction=64, ef=32))
    result = await other.build_or_load(ARTICLES, POLICIES, tmp_path, "hashing@1", "snap-2")
    assert (result.action, result.chunks) == ("built", 5) and "manifest" in result.reason


async def test_saved_upserts_are_not_mistaken_for_the_snapshot(tmp_path: Path) -> None:
    retriever, _ = await _built(tmp_path)
    await retriever.delete(["KB-3"])
    await retriever.save(tmp_path)
    # Same snapshot id, but the saved content differs from the snapshot's: rebuild.
    again, embed = await _built(tmp_path)
    assert embed.calls and len(again) == 5
    # A missing hnswlib file with an intact manifest also means rebuild.
    (tmp_path / "hnsw.bin").unlink()
    third, embed3 = await _built(tmp_path)
    assert embed3.calls and len(third) == 5
