"""run_blocking: the worker thread sees the caller's context variables."""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from server.concurrency import run_blocking

REQUEST = contextvars.ContextVar("request", default="none")


async def test_context_travels_to_the_worker_thread() -> None:
    REQUEST.set("req-1")
    caller = threading.get_ident()
    with ThreadPoolExecutor(1) as pool:
        seen, thread = await run_blocking(
            pool, lambda: (REQUEST.get(), threading.get_ident()))
        # A change in the worker stays in its copy.
        await run_blocking(pool, REQUEST.set, "changed")
    assert seen == "req-1"
    assert thread != caller
    assert REQUEST.get() == "req-1"


async def test_args_and_kwargs_are_passed() -> None:
    assert await run_blocking(None, lambda a, b=0: a + b, 2, b=3) == 5
