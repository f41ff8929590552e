"""Typo augmentation of training utterances for the intent head.

Customers misspell ("chdcking my invoce"); a frozen sentence encoder maps misspelt words
to other word pieces, so the head sees typo'd embeddings only if training does too. On
Bitext (80/20, seeds 0-2) adding typo'd copies lifted linear-head macro-F1 from
0.990-0.996 to 0.991-0.998, fixing mostly misspelt test rows.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def add_typos(text: str, rng: random.Random, edits: int) -> str:
    """``text`` with up to ``edits`` single-character edits inside alphabetic words of 4+."""
    words = text.split()
    candidates = [i for i, word in enumerate(words) if len(word) >= 4 and word.isalpha()]
    for _ in range(edits):
        if not candidates:
            break
        i = rng.choice(candidates)
        word = words[i]
        j = rng.randrange(1, len(word) - 1)
        op = rng.randrange(4)
        if op == 0:  # deletion
            word = word[:j] + word[j + 1 :]
        elif op == 1:  # substitution
            word = word[:j] + rng.choice(_LETTERS) + word[j + 1 :]
        elif op == 2:  # transposition
            word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
        else:  # insertion
            word = word[:j] + rng.choice(_LETTERS) + word[j:]
        words[i] = word
    return " ".join(words)


def typo_copies(texts: Sequence[str], copies: int, seed: int) -> tuple[list[str], list[int]]:
    """``copies`` typo'd variants of every text, and the source row of each variant."""
    rng = random.Random(seed)
    variants: list[str] = []
    sources: list[int] = []
    for _ in range(copies):
        for row, text in enumerate(texts):
            variants.append(add_typos(text, rng, rng.randint(1, 2)))
            sources.append(row)
    return variants, sources
