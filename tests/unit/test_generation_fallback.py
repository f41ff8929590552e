"""FallbackGenerator: the composer takes over when the primary is slow or fails first."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from server.generation.base import Chunk, Grounding
from server.generation.fallback import FallbackGenerator

G = Grounding(intent="order_status", confidence=0.9, channel="chat", customer_name="",
              message="where is my order?")


class Fixed:
    def __init__(self, name: str, pieces: list[str], delay_s: float = 0.0,
                 fail_at: int = -1) -> None:
        self.name, self.version = name, "1"
        self.pieces, self.delay_s, self.fail_at = pieces, delay_s, fail_at
        self.cancelled = threading.Event()
        self.closed = False

    async def stream(self, g: Grounding, cancel: threading.Event | None = None,
                     ) -> AsyncIterator[Chunk]:
        try:
            for i, piece in enumerate(self.pieces):
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if i == self.fail_at:
                    raise RuntimeError("model blew up")
                if cancel is not None and cancel.is_set():
                    self.cancelled.set()
                    return
                yield Chunk(piece)
        finally:
            self.closed = True


async def _collect(gen: FallbackGenerator) -> tuple[str, str, str]:
    stream = gen.stream(G, threading.Event())
    text = "".join([c.text async for c in stream])
    await stream.aclose()
    return text, stream.fell_back, stream.source.name


async def test_a_healthy_primary_answers() -> None:
    gen = FallbackGenerator(Fixed("lm", ["a", "b"]), Fixed("composer", ["X"]), 1.0)
    assert await _collect(gen) == ("ab", "", "lm")


async def test_a_slow_first_chunk_switches_to_the_composer() -> None:
    lm = Fixed("lm", ["a", "b"], delay_s=0.5)
    gen = FallbackGenerator(lm, Fixed("composer", ["X", "Y"]), first_chunk_s=0.05)
    assert await _collect(gen) == ("XY", "generator_timeout", "composer")
    assert lm.closed  # the slow primary was stopped, not left running


async def test_an_error_before_the_first_chunk_switches() -> None:
    gen = FallbackGenerator(Fixed("lm", ["a"], fail_at=0), Fixed("composer", ["X"]), 1.0)
    assert await _collect(gen) == ("X", "generator_error", "composer")


async def test_a_midstream_failure_ends_the_answer_without_raising() -> None:
    gen = FallbackGenerator(Fixed("lm", ["a", "b", "c"], fail_at=2),
                            Fixed("composer", ["X"]), 1.0)
    assert await _collect(gen) == ("ab", "generator_failed_midstream", "lm")


async def test_cancel_reaches_the_primary() -> None:
    lm = Fixed("lm", ["a", "b", "c"])
    gen = FallbackGenerator(lm, Fixed("composer", ["X"]), 1.0)
    cancel = threading.Event()
    stream = gen.stream(G, cancel)
    assert (await stream.__anext__()).text == "a"
    cancel.set()
    rest = [c.text async for c in stream]
    await stream.aclose()
    assert rest == [] and lm.cancelled.is_set()
