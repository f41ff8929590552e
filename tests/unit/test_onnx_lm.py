"""The ONNX causal LM on a tiny random GPT-2 / Llama export built once per session."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.errors import InvalidInput
from server.generation.base import Fact, Generator, Grounding, PassageRef
from server.generation.decoding import SamplingConfig
from server.generation.onnx_lm import OnnxLM

pytestmark = pytest.mark.slow
PROMPT = "Customer: Where is my order A10023? It has not arrived.\nAssistant:"


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Builds each tiny arch once per session; skips when the export stack is missing."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import optimum.exporters.onnx  # noqa: F401
            import torch  # noqa: F401
            import transformers  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"optimum ONNX export unavailable: {exc}")
    from models.tiny_lm import build_tiny_lm

    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = build_tiny_lm(tmp_path_factory.mktemp("lm") / arch, arch=arch)
        return built[arch]

    return get


@pytest.fixture
def lm(tiny_lm_dir: Callable[[str], Path]) -> OnnxLM:
    return OnnxLM(tiny_lm_dir("gpt2"))


def _grounding() -> Grounding:
    return Grounding(
        intent="order_status",
        confidence=0.9,
        channel="chat",
        customer_name="Ana",
        message="Where is my order A10023?",
        facts=[Fact("order", "A10023", "order", "Order A10023 was delivered on 2024-05-03.")],
        passages=[PassageRef("p1", "ART-TRACK", "article", "Tracking", "Track it online.", 0.8)],
    )


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("onnx-lm-decode-")]


def _slow(lm: OnnxLM, monkeypatch: pytest.MonkeyPatch, delay: float = 0.005) -> list[int]:
    """Make each decode step take a while and count steps, so cancellation is observable."""
    steps: list[int] = []
    forward = lm._forward

    def slow_forward(*args: Any, **kwargs: Any) -> Any:
        steps.append(1)
        time.sleep(delay)
        return forward(*args, **kwargs)

    monkeypatch.setattr(lm, "_forward", slow_forward)
    return steps


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_kv_cache_greedy_equals_no_cache(tiny_lm_dir: Callable[[str], Path], arch: str) -> None:
    model = OnnxLM(tiny_lm_dir(arch))
    assert model.providers[-1] == "CPUExecutionProvider"
    ids = model.encode(PROMPT)
    cached = model.generate_ids(ids, 48, use_cache=True, ignore_eos=True)
    reference = model.generate_ids(ids, 48, use_cache=False, ignore_eos=True)
    assert len(cached) == 48
    assert cached == reference
    assert len(set(cached)) > 1
    # The cache path's logits match a full recomputation at the last position.
    seq = ids + cached[:-1]
    _, past = model._forward(seq[:-1], None, 0, keep_cache=True)
    step_logits, _ = model._forward(seq[-1:], past, len(seq) - 1, keep_cache=True)
    full_logits, _ = model._forward(seq, None, 0, keep_cache=False)
    np.testing.assert_allclose(step_logits, full_logits, rtol=1e-4, atol=1e-4)


def test_top_p_with_seed_is_reproducible(lm: OnnxLM) -> None:
    ids = lm.encode(PROMPT)
    kwargs: dict[str, Any] = {"temperature": 1.0, "top_p": 0.9, "ignore_eos": True}
    first = lm.generate_ids(ids, 24, seed=11, **kwargs)
    assert lm.generate_ids(ids, 24, seed=11, **kwargs) == first
    assert lm.generate_ids(ids, 24, use_cache=False, seed=11, **kwargs) == first
    others = [lm.generate_ids(ids, 24, seed=s, **kwargs) for s in (12, 13)]
    assert any(o != first for o in others)
    assert first != lm.generate_ids(ids, 24, ignore_eos=True)  # sampling is not greedy


def test_max_new_tokens_and_context_limit(lm: OnnxLM) -> None:
    ids = lm.encode(PROMPT)
    for n in (1, 7):
        assert len(lm.generate_ids(ids, n, ignore_eos=True)) == n
    lm.max_positions = len(ids) + 3
    assert len(lm.generate_ids(ids, 50, ignore_eos=True)) == 3
    with pytest.raises(InvalidInput):
        lm.generate_ids(ids + ids, 5)
    with pytest.raises(InvalidInput):
        lm.generate_ids([], 5)


def test_eos_ends_generation(lm: OnnxLM) -> None:
    ids = lm.encode(PROMPT)
    free = lm.generate_ids(ids, 20, ignore_eos=True)
    k = next(i for i in range(1, len(free)) if free[i] not in free[:i])
    lm.eos_ids = frozenset({free[k]})
    assert lm.generate_ids(ids, 20) == free[:k]
    assert lm.generate_ids(ids, 20, ignore_eos=True) == free


def test_stop_sequence_cuts_the_text(lm: OnnxLM) -> None:
    ids = lm.encode(PROMPT)
    base = SamplingConfig(max_new_tokens=40, ignore_eos=True)
    reference = "".join(lm.iter_text(ids, base))
    assert len(reference) > 20
    middle = len(reference) // 2
    stop = reference[middle : middle + 3]
    expected = reference[: reference.find(stop)]
    cfg = SamplingConfig(max_new_tokens=40, ignore_eos=True, stop=(stop,))
    assert "".join(lm.iter_text(ids, cfg)) == expected
    assert stop not in expected
    assert lm.generate(PROMPT, cfg) == expected


async def test_stream_yields_chunks_with_all_sources(tiny_lm_dir: Callable[[str], Path]) -> None:
    sampling = SamplingConfig(max_new_tokens=30, ignore_eos=True)
    model = OnnxLM(tiny_lm_dir("gpt2"), sampling=sampling, words_per_chunk=2)
    assert isinstance(model, Generator)
    g = _grounding()
    expected = "".join(model.iter_text(model.prompt_ids(g))).lstrip()
    chunks = [c async for c in model.stream(g)]
    assert "".join(c.text for c in chunks) == expected
    assert len(chunks) > 1
    assert all(c.source_ids == ("A10023", "ART-TRACK") for c in chunks)
    assert all(c.source_kinds == ("order", "article") for c in chunks)
    assert not _decode_threads()


def test_prompt_drops_passages_to_fit(lm: OnnxLM) -> None:
    g = _grounding()
    full = lm.prompt_ids(g)
    without = lm.encode(lm.prompts.render(g, passages=0))
    assert len(without) < len(full)
    lm.sampling = SamplingConfig(max_new_tokens=10)
    lm.max_positions = len(full) - 1 + 10  # one token short of room for every passage
    assert lm.prompt_ids(g) == without
    lm.max_positions = len(without) + 9
    with pytest.raises(InvalidInput):
        lm.prompt_ids(g)


async def test_chunks_cite_only_what_the_prompt_holds(lm: OnnxLM) -> None:
    g = _grounding()
    full = lm.prompt_ids(g)
    lm.sampling = SamplingConfig(max_new_tokens=10, ignore_eos=True)
    lm.max_positions = len(full) - 1 + 10  # the passage no longer fits
    chunks = [c async for c in lm.stream(g)]
    assert chunks
    assert all(c.source_ids == ("A10023",) and c.source_kinds == ("order",) for c in chunks)


async def test_cancel_event_stops_the_decode_thread(
    lm: OnnxLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm.sampling = SamplingConfig(max_new_tokens=400, ignore_eos=True)
    lm.words_per_chunk = 1
    steps = _slow(lm, monkeypatch)
    cancel = threading.Event()
    started = time.perf_counter()
    got = 0
    async for _ in lm.stream(_grounding(), cancel):
        got += 1
        cancel.set()
    assert got >= 1
    assert not _decode_threads()
    assert len(steps) < 100  # stopped long before 400 steps
    assert time.perf_counter() - started < 1.5


async def test_aclose_stops_the_decode_thread(lm: OnnxLM, monkeypatch: pytest.MonkeyPatch) -> None:
    lm.sampling = SamplingConfig(max_new_tokens=400, ignore_eos=True)
    lm.words_per_chunk = 1
    steps = _slow(lm, monkeypatch)
    agen = lm.stream(_grounding())
    await agen.__anext__()
    assert len(_decode_threads()) == 1
    await agen.aclose()  # type: ignore[attr-defined]
    assert not _decode_threads()
    done = len(steps)
    assert done < 100
    await asyncio.sleep(0.05)
    assert len(steps) == done  # nothing runs after close


async def test_task_cancellation_stops_the_decode_thread(
    lm: OnnxLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm.sampling = SamplingConfig(max_new_tokens=400, ignore_eos=True)
    lm.words_per_chunk = 1
    steps = _slow(lm, monkeypatch)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in lm.stream(_grounding()):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _decode_threads()
    assert len(steps) < 100
