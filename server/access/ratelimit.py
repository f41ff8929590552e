"""Per-identity token buckets: `rate_per_s` tokens refill each second up to `burst`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate_per_s: float, burst: float, now: float) -> None:
        self.rate = rate_per_s
        self.burst = max(burst, 1.0)
        self._tokens = self.burst
        self._last = now

    def take(self, now: float) -> float:
        """0.0 when a token was taken; else the seconds until one is available."""
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


class RateLimiter:
    """One bucket per identity id, created on first use with that identity's limit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def check(self, key: str, rate_per_s: float, burst: float) -> float:
        """0.0 = admitted; else the retry-after in seconds. rate <= 0 = unlimited."""
        if rate_per_s <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.rate != rate_per_s or bucket.burst != max(burst, 1.0):
                bucket = self._buckets[key] = TokenBucket(rate_per_s, burst or rate_per_s, now)
            return bucket.take(now)
