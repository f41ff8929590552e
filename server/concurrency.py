"""The one way to run blocking work off the event loop.

`run_blocking` hands a function to an executor with a copy of the caller's
`contextvars` context, so whatever the caller had set (the current trace span, a
request id) is still set in the worker thread: spans opened there are children of the
caller's span. Every executor hop in the server goes through here.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")


async def run_blocking(executor: Executor | None, fn: Callable[..., T], *args: Any,
                       **kwargs: Any) -> T:
    """`await run_blocking(pool, fn, *args)`: fn(*args, **kwargs) in `pool` (None = the
    loop's default executor), in a copy of the current context."""
    ctx = contextvars.copy_context()
    call = functools.partial(ctx.run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)
