"""Tokenization for encoder models with HF `tokenizers`, from a model's tokenizer.json.

The shipped tokenizer.json pads and truncates to a fixed 128; we turn padding off and
pad each batch to its own longest member (less work for short chat messages), and
we truncate explicitly: input up to `max_input_tokens` is cut to the model's
`max_length` (keeping the closing special token), longer input is rejected.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from server.errors import InvalidInput

# Its Rust thread pool fights onnxruntime's threads on small machines (2-4x slower).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


Encoded = tuple[list[int], list[int]]  # token ids, token type ids


class TokenBatch:
    """Padded int64 arrays for one batch, in the order the texts were given."""

    __slots__ = ("attention_mask", "input_ids", "lengths", "token_type_ids")

    def __init__(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray,
        token_type_ids: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.token_type_ids = token_type_ids
        self.lengths = lengths

    def feeds(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The subset of inputs a session declares (not every encoder has token types)."""
        arrays = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }
        return {n: arrays[n] for n in names}


class TextTokenizer:
    def __init__(self, path: Path, max_length: int = 128, max_input_tokens: int = 512) -> None:
        if max_input_tokens < max_length:
            raise ValueError("max_input_tokens must be >= max_length")
        self._tok = Tokenizer.from_file(str(path))
        self._tok.no_padding()
        # One past the limit, so that "too long" is visible without a second pass.
        self._tok.enable_truncation(max_input_tokens + 1)
        self.max_length = max_length
        self.max_input_tokens = max_input_tokens
        pad = self._tok.token_to_id("[PAD]")
        self.pad_id = 0 if pad is None else pad

    def encode(self, texts: Sequence[str]) -> list[Encoded | InvalidInput]:
        """Token ids and type ids per text, truncated to max_length.

        A text over `max_input_tokens` gets an InvalidInput in its place, so that one
        bad member of a batch fails alone.
        """
        out: list[Encoded | InvalidInput] = []
        for enc in self._tok.encode_batch(list(texts)):
            ids, types = enc.ids, enc.type_ids
            if len(ids) > self.max_input_tokens:
                out.append(InvalidInput(f"text is longer than {self.max_input_tokens} tokens"))
                continue
            if len(ids) > self.max_length:
                # Keep the closing special token ([SEP]) the model was trained with.
                ids = ids[: self.max_length - 1] + ids[-1:]
                types = types[: self.max_length - 1] + types[-1:]
            out.append((ids, types))
        return out

    def count(self, text: str) -> int:
        return len(self._tok.encode(text).ids)

    def pad(self, encoded: Sequence[Encoded]) -> TokenBatch:
        lengths = np.fromiter((len(ids) for ids, _ in encoded), dtype=np.int64, count=len(encoded))
        width = int(lengths.max()) if len(encoded) else 0
        input_ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        token_types = np.zeros((len(encoded), width), dtype=np.int64)
        for row, (ids, types) in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            token_types[row, : len(types)] = types
        mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
        return TokenBatch(input_ids, mask, token_types, lengths)
