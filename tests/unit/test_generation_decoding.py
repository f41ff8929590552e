"""Model-free decoding pieces: sampling, incremental detokenization, stop strings, prompts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from server.errors import DataError, InvalidInput
from server.generation.base import Fact, Grounding, PassageRef
from server.generation.decoding import (
    IncrementalDetokenizer,
    SamplingConfig,
    StopMatcher,
    TokenSampler,
)
from server.generation.prompt import PLAIN_STOPS, PromptBuilder, system_message


def _nucleus(probs: np.ndarray, top_p: float) -> set[int]:
    """Naive reference: add tokens by falling probability until the mass reaches top_p."""
    chosen: set[int] = set()
    mass = 0.0
    for idx in sorted(range(len(probs)), key=lambda i: (-probs[i], i)):
        chosen.add(idx)
        mass += probs[idx]
        if mass >= top_p - 1e-12:
            break
    return chosen


def test_greedy_is_argmax() -> None:
    rng = np.random.default_rng(1)
    sampler = TokenSampler(SamplingConfig())
    for _ in range(20):
        row = rng.normal(size=50).astype(np.float32)
        assert sampler(row) == int(np.argmax(row))


def test_top_p_samples_only_the_nucleus_with_renormalized_odds() -> None:
    probs = np.array([0.05, 0.5, 0.2, 0.25])
    logits = np.log(probs)
    sampler = TokenSampler(SamplingConfig(temperature=1.0, top_p=0.7, seed=7))
    draws = np.array([sampler(logits) for _ in range(4000)])
    assert set(draws.tolist()) == _nucleus(probs, 0.7) == {1, 3}
    assert abs(np.mean(draws == 1) - 0.5 / 0.75) < 0.03


def test_top_p_matches_naive_nucleus_on_random_rows() -> None:
    rng = np.random.default_rng(3)
    for trial in range(30):
        logits = rng.normal(scale=2.0, size=12)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        top_p = float(rng.uniform(0.1, 0.99))
        sampler = TokenSampler(SamplingConfig(temperature=1.0, top_p=top_p, seed=trial))
        assert {sampler(logits) for _ in range(300)} <= _nucleus(probs, top_p)


def test_seed_reproducible_and_top_k_one_is_greedy() -> None:
    logits = np.random.default_rng(0).normal(size=100)
    cfg = SamplingConfig(temperature=0.8, top_p=0.95, seed=42)
    a, b = TokenSampler(cfg), TokenSampler(cfg)
    draws = [a(logits) for _ in range(50)]
    assert draws == [b(logits) for _ in range(50)]
    assert len(set(draws)) > 5  # it does sample, not collapse to the argmax
    other = TokenSampler(SamplingConfig(temperature=0.8, top_p=0.95, seed=43))
    assert [other(logits) for _ in range(50)] != draws
    top1 = TokenSampler(SamplingConfig(temperature=2.0, top_k=1, seed=5))
    assert {top1(logits) for _ in range(20)} == {int(np.argmax(logits))}


@pytest.mark.parametrize(
    "bad",
    [
        {"max_new_tokens": 0},
        {"temperature": -1.0},
        {"temperature": float("nan")},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
        {"stop": ("",)},
    ],
)
def test_invalid_sampling_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        SamplingConfig(**bad).validate()  # type: ignore[arg-type]


def _naive_stop(text: str, stops: tuple[str, ...]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def test_stop_matcher_against_naive_on_random_splits() -> None:
    rng = random.Random(0)
    stops = ("\nCustomer:", "END", "ab")
    alphabet = ["a", "b", "E", "N", "D", "x", " ", "\n", "Cust", "omer", ":"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(4, len(text) + 1)))
        pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        matcher = StopMatcher(stops)
        out = "".join(matcher.push(p) for p in pieces) + matcher.flush()
        assert out == _naive_stop(text, stops)
        assert matcher.stopped == (out != text or any(s in text for s in stops))


def test_stop_matcher_holds_only_possible_prefixes() -> None:
    matcher = StopMatcher(("\nCustomer:",))
    assert matcher.push("Hello\nCus") == "Hello"
    assert matcher.push("hion") == "\nCushion"
    assert matcher.push(" and\nCustomer: hi") == " and"
    assert matcher.stopped and matcher.push("more") == "" and matcher.flush() == ""


@pytest.fixture(scope="module")
def byte_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(["your order has shipped, thanks for waiting"] * 5, trainer)
    return tok


def test_detokenizer_never_splits_a_multibyte_char(byte_tokenizer: Tokenizer) -> None:
    text = "Café ☕ order 🎉 shipped — naïve 東京"
    ids = byte_tokenizer.encode(text).ids
    # The emoji and CJK are not in the merges, so they span several byte tokens.
    assert len(ids) > len(text.split()) + 6
    detok = IncrementalDetokenizer(byte_tokenizer)
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) == text == byte_tokenizer.decode(ids)
    # Held back while incomplete: the first byte of the emoji alone yields nothing.
    emoji_ids = byte_tokenizer.encode("🎉").ids
    assert len(emoji_ids) == 4
    partial = IncrementalDetokenizer(byte_tokenizer)
    assert [partial.push(i) for i in emoji_ids] == ["", "", "", "🎉"]


def test_detokenizer_with_prompt_context(byte_tokenizer: Tokenizer) -> None:
    prompt = byte_tokenizer.encode("Assistant:").ids
    answer = byte_tokenizer.encode(" your order has shipped").ids
    detok = IncrementalDetokenizer(byte_tokenizer, prompt)
    assert "".join(detok.push(i) for i in answer) + detok.flush() == " your order has shipped"


def _grounding() -> Grounding:
    return Grounding(
        intent="order_status",
        confidence=0.9,
        channel="email",
        customer_name="Ana",
        message="  where is A10023?  ",
        facts=[Fact("order", "A10023", "order", "Order A10023 was delivered on 2024-05-03.")],
        passages=[
            PassageRef("p1", "ART-1", "article", "Tracking", "Track it\nonline.", 0.2),
            PassageRef("p2", "POL-R", "policy", "Returns", "30 days.", 0.9),
        ],
    )


def test_plain_prompt_has_facts_passages_and_message() -> None:
    builder = PromptBuilder()
    prompt = builder.render(_grounding())
    assert "- [A10023] Order A10023 was delivered on 2024-05-03." in prompt
    assert prompt.index("[POL-R] Returns: 30 days.") < prompt.index("[ART-1] Tracking: Track")
    assert prompt.endswith("\n\nCustomer: where is A10023?\nAssistant:")
    assert "polite email" in prompt and "Customer name: Ana" in prompt
    assert builder.stops == PLAIN_STOPS
    assert "ART-1" not in system_message(_grounding(), passages=1)


def test_chat_template_from_manifest_or_tokenizer_config(tmp_path: Path) -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}"
        "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    config = {
        "chat_template": [{"name": "default", "template": template}],
        "bos_token": "<s>",
        "eos_token": {"content": "</s>"},
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    builder = PromptBuilder.for_model(tmp_path, {})
    prompt = builder.render(_grounding())
    assert builder.uses_chat_template and builder.stops == ()
    assert prompt.startswith("<s><|system|>\nYou are a customer service assistant")
    assert prompt.endswith("<|user|>\nwhere is A10023?</s>\n<|assistant|>\n")
    manifest_builder = PromptBuilder.for_model(
        tmp_path, {"chat_template": "[{{ messages|length }}]"}
    )
    assert manifest_builder.render(_grounding()) == "[2]"


def test_broken_chat_template_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError):
        PromptBuilder("{% for x in %}")
    with pytest.raises(DataError):
        PromptBuilder("{{ raise_exception('no system role') }}").render(_grounding())
