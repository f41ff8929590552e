"""Decoding pieces of the causal LM that need no model: sampling, detokenization, stops.

- `SamplingConfig`: greedy (temperature 0) or temperature + top-k + top-p with a seed.
- `TokenSampler`: picks the next token from a logits row, reproducibly for a seed.
- `IncrementalDetokenizer`: turns a growing token list into text deltas without ever
  emitting half of a multi-byte character (byte-level BPE splits them across tokens).
- `StopMatcher`: finds stop strings in streamed text, holding back only what could
  still become a stop string, and drops the stop string itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec
import numpy as np

from server.errors import InvalidInput

_REPLACEMENT = "\ufffd"
# Tokens of context decoded before the new ones, so decoders that strip a leading
# space at the start of a text (SentencePiece "▁") still space the first new word.
_CONTEXT_TOKENS = 5


class SamplingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to pick tokens; temperature 0 means greedy."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k cut
    seed: int = 0
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # keep going past end-of-sequence (benchmarks, tests)

    def validate(self) -> SamplingConfig:
        """Return self, or raise InvalidInput naming the bad field."""
        if self.max_new_tokens < 1:
            raise InvalidInput("max_new_tokens must be >= 1")
        if not self.temperature >= 0.0:
            raise InvalidInput("temperature must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidInput("top_p must be in (0, 1]")
        if self.top_k < 0:
            raise InvalidInput("top_k must be >= 0")
        if any(not s for s in self.stop):
            raise InvalidInput("stop strings must not be empty")
        return self


class TokenSampler:
    """Next-token choice for one generation; owns its seeded random stream."""

    def __init__(self, config: SamplingConfig) -> None:
        self.config = config.validate()
        self._rng = np.random.Generator(np.random.PCG64(config.seed))

    def __call__(self, logits: np.ndarray) -> int:
        """Pick a token id from a 1-D logits row."""
        cfg = self.config
        if cfg.temperature == 0.0:
            return int(np.argmax(logits))
        z = logits.astype(np.float64) / cfg.temperature
        # Stable sort: equal probabilities keep id order, so a seed fully fixes the pick.
        order = np.argsort(-z, kind="stable")
        if cfg.top_k:
            order = order[: cfg.top_k]
        z = z[order]
        probs = np.exp(z - z[0])
        probs /= probs.sum()
        # Nucleus: the smallest prefix whose mass reaches top_p (at least one token).
        cumulative = np.cumsum(probs)
        keep = min(int(np.searchsorted(cumulative, cfg.top_p - 1e-12)) + 1, len(order))
        kept = cumulative[:keep]
        draw = self._rng.random() * kept[-1]
        index = min(int(np.searchsorted(kept, draw, side="right")), keep - 1)
        return int(order[index])


class StopFlag(Protocol):
    """Anything the decode loop can poll between tokens (a threading.Event, say)."""

    def is_set(self) -> bool: ...


class TextDecoder(Protocol):
    """The part of `tokenizers.Tokenizer` the detokenizer uses."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str: ...


class IncrementalDetokenizer:
    """Text deltas for tokens pushed one at a time; complete characters only."""

    def __init__(self, tokenizer: TextDecoder, context_ids: Sequence[int] = ()) -> None:
        self._tokenizer = tokenizer
        self._ids = list(context_ids[-_CONTEXT_TOKENS:]) if context_ids else []
        self._prefix = 0  # start of the window decoded for spacing context
        self._read = len(self._ids)  # tokens before this are already emitted

    def push(self, token_id: int) -> str:
        """Add one token; return the new text it completes (may be "")."""
        self._ids.append(token_id)
        return self._emit(final=False)

    def flush(self) -> str:
        """Whatever text is still held back at the end of generation."""
        return self._emit(final=True)

    def _emit(self, final: bool) -> str:
        decode = self._tokenizer.decode
        seen = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        full = decode(self._ids[self._prefix :], skip_special_tokens=True)
        # A trailing U+FFFD means the last token ended inside a multi-byte character.
        if len(full) > len(seen) and (final or not full.endswith(_REPLACEMENT)):
            self._prefix, self._read = self._read, len(self._ids)
            return full[len(seen) :]
        return ""


class StopMatcher:
    """Streams text through, cutting it at the first stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(stops)
        self._held = ""
        self.stopped = False

    def push(self, text: str) -> str:
        """Add text; return what is safe to emit. After a stop, always ""."""
        if self.stopped:
            return ""
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self._stops) if i >= 0]
        if hits:
            self.stopped = True
            self._held = ""
            return buffer[: min(hits)]
        hold = self._partial_suffix(buffer)
        self._held = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold]

    def flush(self) -> str:
        """Held text at the end (it never became a stop string)."""
        held, self._held = ("" if self.stopped else self._held), ""
        return held

    def _partial_suffix(self, buffer: str) -> int:
        # Longest suffix of the buffer that is a proper prefix of some stop string.
        best = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(buffer)), best, -1):
                if buffer.endswith(stop[:n]):
                    best = n
                    break
        return best
