"""A generator that streams fixed text, slowly if asked: for testing what the pipeline
does around generation (guard blocks, cancellation, deadlines), not generation itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

from server.generation.base import Chunk, Grounding


class ScriptedGenerator:
    name = "scripted"
    version = "1"

    def __init__(self, pieces: list[str], delay_s: float = 0.0) -> None:
        self.pieces = pieces
        self.delay_s = delay_s
        self.yielded = 0
        self.closed = threading.Event()

    async def stream(
        self, g: Grounding, cancel: threading.Event | None = None
    ) -> AsyncIterator[Chunk]:
        try:
            for piece in self.pieces:
                if cancel is not None and cancel.is_set():
                    return
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                self.yielded += 1
                yield Chunk(piece, ("kb-scripted",), ("article",))
        finally:
            self.closed.set()
