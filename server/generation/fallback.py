"""A generator with a fallback: when the primary (an ONNX LM) fails or produces no
first chunk within its time budget, the answer comes from the grounded composer.

The stream object remembers why it fell back (`fell_back`), so the pipeline records
it in the decision and counts it. After the first chunk has been sent a switch would
not read as one answer, so a later failure ends the stream where it is (recorded as
`generator_failed_midstream`) instead of raising into the client.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

from server.generation.base import Chunk, Generator, Grounding

log = logging.getLogger(__name__)


class FallbackStream:
    """Async iterator over the primary's chunks, or the fallback's."""

    def __init__(self, primary: Generator, fallback: Generator, g: Grounding,
                 cancel: threading.Event | None, first_chunk_s: float) -> None:
        self._g = g
        self._cancel = cancel or threading.Event()
        self._inner_cancel = threading.Event()
        self._primary: AsyncIterator[Chunk] = primary.stream(g, self._inner_cancel)
        self._fallback_gen = fallback
        self._first_chunk_s = first_chunk_s
        self._current: AsyncIterator[Chunk] | None = None
        self._started = False
        self.fell_back = ""  # "" | generator_timeout | generator_error | ..._midstream
        self.source = primary  # the generator whose chunks the client gets

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._cancel.is_set():
            self._inner_cancel.set()
        if self._current is not None:
            return await self._current.__anext__()
        if not self._started:
            self._started = True
            try:
                first = await asyncio.wait_for(self._primary.__anext__(),
                                               self._first_chunk_s)
            except StopAsyncIteration:
                raise
            except TimeoutError:
                return await self._switch("generator_timeout")
            except Exception:
                log.exception("generator failed before its first chunk; using the composer")
                return await self._switch("generator_error")
            return first
        try:
            return await self._primary.__anext__()
        except StopAsyncIteration:
            raise
        except Exception:
            log.exception("generator failed mid-stream; ending the answer here")
            self.fell_back = "generator_failed_midstream"
            await self._close_primary()
            raise StopAsyncIteration from None

    async def _switch(self, reason: str) -> Chunk:
        self.fell_back = reason
        await self._close_primary()
        self.source = self._fallback_gen
        self._current = self._fallback_gen.stream(self._g, self._cancel)
        return await self._current.__anext__()

    async def _close_primary(self) -> None:
        self._inner_cancel.set()  # stops an LM's decode thread
        closer = getattr(self._primary, "aclose", None)
        if closer is not None:
            try:
                await closer()
            except Exception:
                log.debug("closing the failed generator raised", exc_info=True)

    async def aclose(self) -> None:
        self._inner_cancel.set()
        await self._close_primary()
        closer = getattr(self._current, "aclose", None)
        if closer is not None:
            await closer()


class FallbackGenerator:
    """Generator protocol over a primary with a fallback (built per call)."""

    def __init__(self, primary: Generator, fallback: Generator,
                 first_chunk_s: float = 2.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self.first_chunk_s = first_chunk_s
        self.name = primary.name
        self.version = primary.version

    def stream(self, g: Grounding, cancel: threading.Event | None = None) -> FallbackStream:
        return FallbackStream(self.primary, self.fallback, g, cancel, self.first_chunk_s)
