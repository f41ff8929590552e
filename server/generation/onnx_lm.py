"""A causal LM exported with optimum's `text-generation-with-past`, run by onnxruntime.

One `model.onnx` takes `input_ids`, `attention_mask`, `position_ids` (when present) and
`past_key_values.N.key/value`, and returns `logits` and `present.N.key/value`. The KV
cache is fed back by name through an IO binding, so on CUDA it stays on the device
between steps; the first step binds an empty past `[batch, heads, 0, head_dim]`.

`OnnxLM` implements the Generator protocol: the prompt comes from the Grounding
(server/generation/prompt.py), decoding runs in a worker thread per answer, and the
worker stops at the next token when the consumer goes away or `cancel` is set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import re
import threading
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.errors import DataError, InvalidInput, NotFound
from server.generation.base import Chunk, Grounding
from server.generation.decoding import (
    IncrementalDetokenizer,
    SamplingConfig,
    StopFlag,
    StopMatcher,
    TokenSampler,
)
from server.generation.prompt import PromptBuilder, cited_sources
from server.inference.session import choose_providers

_PAST_PREFIX = "past_key_values."
_PRESENT_PREFIX = "present."
_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_WORDS = re.compile(r"\S+\s+")
_END = object()


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a JSON object")
    return value


class OnnxLM:
    """Greedy or nucleus decoding with a KV cache; a Generator over a model folder."""

    def __init__(
        self,
        model_dir: Path,
        *,
        name: str | None = None,
        version: str | None = None,
        sampling: SamplingConfig | None = None,
        providers: Sequence[str] | None = None,
        intra_op_threads: int = 0,
        words_per_chunk: int = 4,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        model_path = model_dir / "model.onnx"
        if not model_path.is_file() or not (model_dir / "tokenizer.json").is_file():
            raise NotFound(f"{model_dir}: needs model.onnx and tokenizer.json")
        self.manifest = _read_json(model_dir / "manifest.json")
        config = _read_json(model_dir / "config.json")
        self.name = name or str(self.manifest.get("name", model_dir.name))
        self.version = version or str(self.manifest.get("version", "1"))
        self.sampling = (sampling or SamplingConfig()).validate()
        self.words_per_chunk = max(1, words_per_chunk)
        self._serial = itertools.count(1)  # names decode threads, for logs and tests
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.prompts = PromptBuilder.for_model(model_dir, self.manifest)

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(
            str(model_path), options, providers=choose_providers(providers or ())
        )
        self.providers = tuple(self.session.get_providers())
        # Where present.* outputs live between steps: on the GPU when CUDA runs the model.
        self._device = "cuda" if self.providers[0] == "CUDAExecutionProvider" else "cpu"
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        self._input_names = set(inputs)
        self._past = sorted((n for n in inputs if n.startswith(_PAST_PREFIX)), key=_layer_key)
        if not self._past or "logits" not in outputs:
            raise DataError(f"{model_path}: not a text-generation-with-past export")
        self._present = [_PRESENT_PREFIX + n[len(_PAST_PREFIX) :] for n in self._past]
        missing = [n for n in self._present if n not in outputs]
        if missing:
            raise DataError(f"{model_path}: outputs {missing} missing for the KV cache")
        self._empty_past = {n: self._empty(inputs[n], config) for n in self._past}
        self.eos_ids = _eos_ids(self.manifest, config, model_dir)
        self.max_positions = int(
            self.manifest.get("max_positions")
            or config.get("n_positions")
            or config.get("max_position_embeddings")
            or 2048
        )

    def _empty(self, arg: Any, config: dict[str, Any]) -> np.ndarray:
        dtype = _DTYPES.get(arg.type)
        if dtype is None:
            raise DataError(f"unsupported KV cache type {arg.type} for {arg.name}")
        dims = list(arg.shape)
        heads, head_dim = dims[1], dims[3]
        if not isinstance(heads, int) or not isinstance(head_dim, int):
            # Symbolic dims: take them from the model config saved beside the export.
            n_heads = config.get("n_head") or config.get("num_attention_heads")
            heads = config.get("num_key_value_heads") or n_heads
            hidden = config.get("n_embd") or config.get("hidden_size")
            head_dim = config.get("head_dim") or (hidden // n_heads if hidden else None)
            if not isinstance(heads, int) or not isinstance(head_dim, int):
                raise DataError(f"cannot tell the KV cache shape of {arg.name}")
        return np.zeros((1, heads, 0, head_dim), dtype=dtype)

    # -- decoding -------------------------------------------------------------------

    def _forward(
        self, step_ids: Sequence[int], past: list[Any] | None, past_len: int, keep_cache: bool
    ) -> tuple[np.ndarray, list[Any]]:
        """Run one step; return the last position's logits and the new cache values."""
        n = len(step_ids)
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", np.asarray([step_ids], dtype=np.int64))
        if "attention_mask" in self._input_names:
            binding.bind_cpu_input("attention_mask", np.ones((1, past_len + n), dtype=np.int64))
        if "position_ids" in self._input_names:
            positions = np.arange(past_len, past_len + n, dtype=np.int64)[None, :]
            binding.bind_cpu_input("position_ids", positions)
        if "use_cache_branch" in self._input_names:  # older merged-decoder exports
            binding.bind_cpu_input("use_cache_branch", np.asarray([past is not None]))
        for i, name in enumerate(self._past):
            if past is None:
                binding.bind_cpu_input(name, self._empty_past[name])
            else:
                binding.bind_ortvalue_input(name, past[i])
        binding.bind_output("logits", "cpu")
        if keep_cache:
            for name in self._present:
                binding.bind_output(name, self._device)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        return values[0].numpy()[0, -1], list(values[1:])

    def iter_token_ids(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingConfig | None = None,
        *,
        use_cache: bool = True,
        stop_event: StopFlag | None = None,
    ) -> Iterator[int]:
        """Yield new token ids one by one until EOS, max_new_tokens or `stop_event`."""
        cfg = (sampling or self.sampling).validate()
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise InvalidInput("the prompt is empty")
        if len(ids) >= self.max_positions:
            raise InvalidInput(f"prompt of {len(ids)} tokens exceeds {self.max_positions}")
        budget = min(cfg.max_new_tokens, self.max_positions - len(ids))
        sampler = TokenSampler(cfg)
        past: list[Any] | None = None
        past_len, step = 0, ids
        for _ in range(budget):
            if stop_event is not None and stop_event.is_set():
                return
            if use_cache:
                logits, past = self._forward(step, past, past_len, keep_cache=True)
                past_len += len(step)
            else:  # reference path: recompute the whole sequence every step
                logits, _ = self._forward(ids, None, 0, keep_cache=False)
            token = sampler(logits)
            if token in self.eos_ids and not cfg.ignore_eos:
                return
            ids.append(token)
            step = [token]
            yield token

    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        use_cache: bool = True,
        *,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int = 0,
        ignore_eos: bool = False,
        stop_event: StopFlag | None = None,
    ) -> list[int]:
        """New token ids for a prompt (no text stops); for tests and benchmarks."""
        cfg = SamplingConfig(
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            seed=seed,
            ignore_eos=ignore_eos,
        )
        return list(
            self.iter_token_ids(prompt_ids, cfg, use_cache=use_cache, stop_event=stop_event)
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt; a chat template already holds its special tokens."""
        add_special = not self.prompts.uses_chat_template
        return list(self.tokenizer.encode(text, add_special_tokens=add_special).ids)

    def iter_text(
        self,
        prompt_ids: Sequence[int],
        sampling: SamplingConfig | None = None,
        *,
        stop_event: StopFlag | None = None,
    ) -> Generator[str, None, None]:
        """Text pieces as they decode, cut at the first stop string (not included)."""
        cfg = (sampling or self.sampling).validate()
        stops = StopMatcher(tuple(cfg.stop) + tuple(self.prompts.stops))
        detok = IncrementalDetokenizer(self.tokenizer, prompt_ids)
        for token in self.iter_token_ids(prompt_ids, cfg, stop_event=stop_event):
            piece = stops.push(detok.push(token))
            if piece:
                yield piece
            if stops.stopped:
                return
        tail = stops.push(detok.flush()) + stops.flush()
        if tail:
            yield tail

    def generate(self, prompt: str, sampling: SamplingConfig | None = None) -> str:
        """The whole completion of a prompt text, stops applied."""
        return "".join(self.iter_text(self.encode(prompt), sampling))

    def prompt_ids(self, g: Grounding) -> list[int]:
        """The grounding's prompt, dropping the weakest passages until it fits the context."""
        return self.fit_prompt(g)[0]

    def fit_prompt(self, g: Grounding) -> tuple[list[int], int]:
        """Prompt ids and how many passages (best first) made it into the prompt."""
        room = self.max_positions - min(self.sampling.max_new_tokens, self.max_positions // 2)
        for passages in range(len(g.passages), -1, -1):
            ids = self.encode(self.prompts.render(g, passages))
            if len(ids) <= room:
                return ids, passages
        raise InvalidInput(f"the prompt does not fit the model's {self.max_positions} tokens")

    # -- Generator protocol -------------------------------------------------------

    async def stream(
        self, g: Grounding, cancel: threading.Event | None = None
    ) -> AsyncIterator[Chunk]:
        """Decode in a worker thread; yield word-group chunks citing the prompt's sources."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def work() -> None:
            try:
                watch = _EitherEvent(stop, cancel)
                prompt, passages = self.fit_prompt(g)
                put(_Cited(*cited_sources(g, passages)))
                pieces = self.iter_text(prompt, stop_event=watch)
                with contextlib.closing(pieces):
                    for piece in pieces:
                        if watch.is_set():
                            break
                        put(piece)
                put(_END)
            except BaseException as exc:  # handed to the consumer, raised there
                put(exc)
            finally:
                finished.set_result(None)

        worker = threading.Thread(
            target=work, name=f"onnx-lm-decode-{next(self._serial)}", daemon=True
        )
        worker.start()
        cited = _Cited(*cited_sources(g))
        pending, started = "", False
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, _Cited):  # what the prompt really holds
                    cited = item
                    continue
                pending += str(item)
                if not started:
                    pending = pending.lstrip()
                ready = self._ready_words(pending)
                if ready:
                    started = True
                    pending = pending[len(ready) :]
                    yield Chunk(ready, cited.ids, cited.kinds)
            if pending.strip():
                yield Chunk(pending, cited.ids, cited.kinds)
        finally:
            # Consumer gone (aclose, CancelledError) or done: stop the worker, wait briefly.
            stop.set()
            await asyncio.wait([asyncio.wrap_future(finished)], timeout=5.0)
            if finished.done():
                worker.join(timeout=0.5)  # its work returned; this only waits for thread exit

    def _ready_words(self, text: str) -> str:
        """The longest prefix of whole words that makes a chunk, or ""."""
        words = _WORDS.findall(text)
        if len(words) < self.words_per_chunk:
            return ""
        return "".join(words[: len(words) - len(words) % self.words_per_chunk])


@dataclass(frozen=True, slots=True)
class _Cited:
    """Sources of the facts and passages the prompt includes; chunks cite these."""

    ids: tuple[str, ...]
    kinds: tuple[str, ...]


class _EitherEvent:
    """Set when either event is set; what the decode loop polls between tokens."""

    def __init__(self, first: threading.Event, second: threading.Event | None) -> None:
        self._events = (first,) if second is None else (first, second)

    def is_set(self) -> bool:
        return any(e.is_set() for e in self._events)


def _layer_key(name: str) -> tuple[int, str]:
    # past_key_values.10.key sorts after .9.key: order by layer number, then key/value.
    parts = name.split(".")
    return (int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else -1, name)


def _eos_ids(manifest: dict[str, Any], config: dict[str, Any], model_dir: Path) -> frozenset[int]:
    """End-of-sequence ids from the manifest, generation config or model config."""
    generation = _read_json(model_dir / "generation_config.json")
    for source in (
        manifest.get("eos_token_ids"),
        generation.get("eos_token_id"),
        config.get("eos_token_id"),
    ):
        if isinstance(source, int):
            return frozenset({source})
        if isinstance(source, list) and all(isinstance(x, int) for x in source):
            return frozenset(source)
    return frozenset()
