"""Running a built model the way the server does: tokenizers + onnxruntime on CPU.

Texts are tokenized with padding to the longest text of the batch and truncation at
``max_length``; all graph inputs the model declares are fed as int64. Used by the build
(embedding training data, checking int8 against fp32) and by ``models eval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

FloatArray = npt.NDArray[np.float32]


def load_tokenizer(path: Path, max_length: int) -> Tokenizer:
    """The tokenizer at ``path`` set to pad to the batch's longest text and truncate."""
    tokenizer = Tokenizer.from_file(str(path))
    padding = tokenizer.padding or {}
    pad_token = str(padding.get("pad_token", "[PAD]"))
    pad_id = padding.get("pad_id")
    if pad_id is None:
        pad_id = tokenizer.token_to_id(pad_token) or 0
    tokenizer.no_padding()
    tokenizer.enable_padding(pad_id=int(pad_id), pad_token=pad_token)
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class OnnxTextModel:
    """One onnxruntime session plus its tokenizer; ``run`` returns every graph output."""

    def __init__(
        self, model_path: Path, tokenizer_path: Path, max_length: int, threads: int = 0
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = load_tokenizer(tokenizer_path, max_length)
        self.input_names = [i.name for i in self._session.get_inputs()]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def run_batch(self, texts: Sequence[str]) -> dict[str, FloatArray]:
        """Outputs for one batch, rows in the order of ``texts``."""
        encodings = self._tokenizer.encode_batch(list(texts))
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        values = self._session.run(self.output_names, {n: feeds[n] for n in self.input_names})
        return {name: np.asarray(v) for name, v in zip(self.output_names, values, strict=True)}

    def run(self, texts: Sequence[str], batch_size: int = 64) -> dict[str, FloatArray]:
        """Outputs for all ``texts``, batched by similar length to keep padding small."""
        if not texts:
            raise ValueError("no texts to run")
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        parts: dict[str, list[FloatArray]] = {name: [] for name in self.output_names}
        for start in range(0, len(order), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            for name, value in self.run_batch(batch).items():
                parts[name].append(value)
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[np.array(order, dtype=np.int64)] = np.arange(len(order))
        return {name: np.concatenate(chunks)[inverse] for name, chunks in parts.items()}
