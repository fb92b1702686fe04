"""Fixed-window counts shared by every server process in Redis, added to it in batches.

A rate limit counted in Redis costs each request a round trip: on intake, the busiest write,
that was about a tenth of the machine's CPU per report (docs/intake.md). Far from its limit an
address does not need an exact count at every request, only in time to be stopped. So each
process counts in its own memory and adds what it counted to Redis at least every
``flush_seconds`` (with the next request after that), reading back the shared totals; once
an address has used half its limit as the process sees it, every further request of that
address is counted in Redis at once.

What that allows: one process alone is exact. Several processes can let through, beyond the
limit, what the others counted for the address and had not yet added, each less than half the
limit and only what arrived in one interval: a burst, not a way around the limit.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem


@dataclass(frozen=True)
class Hit:
    """One request counted: how many the window holds now (as far as this process knows),
    and when the window ends (epoch seconds)."""

    used: int
    window_end: float

    def retry_after(self) -> int:
        """Whole seconds until the window ends (at least 1), for ``Retry-After``."""
        return max(1, math.ceil(self.window_end - time.time()))


class BatchedWindowCounts:
    """The counts of one process for one purpose (``prefix``), in windows aligned to the epoch.

    Thread-safe; the Redis round trip is made outside the lock. A failing Redis raises its
    error and keeps the unsent counts for the next flush."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._window: tuple[int, int] | None = None  # (period, number) of the counts held
        self._pending: dict[str, int] = {}  # counted here, not yet added to Redis
        self._shared: dict[str, int] = {}  # Redis's total at the last flush
        self._flushed_at = float("-inf")

    def hit(self, redis, limit: RateLimitItem, key: str, flush_seconds: float) -> Hit:
        """Count one request of ``key`` (e.g. a client address) against ``limit``."""
        period = limit.get_expiry()
        now = time.time()
        window = (period, int(now // period))
        end = (window[1] + 1) * period
        name = f"{self.prefix}/{limit.amount}/{period}/{window[1]}/{key}"
        with self._lock:
            if window != self._window:  # a new window: the old one's counts no longer matter
                self._window, self._pending, self._shared = window, {}, {}
            self._pending[name] = self._pending.get(name, 0) + 1
            seen = self._shared.get(name, 0) + self._pending[name]
            if 2 * seen <= limit.amount and time.monotonic() - self._flushed_at < flush_seconds:
                return Hit(seen, end)
            batch, self._pending = self._pending, {}
            self._flushed_at = time.monotonic()
        try:
            totals = _add(redis, batch, int(end) + 1)
        except BaseException:
            with self._lock:
                if self._window == window:
                    for sent, n in batch.items():
                        self._pending[sent] = self._pending.get(sent, 0) + n
            raise
        with self._lock:
            if self._window == window:
                self._shared.update(totals)
                seen = self._shared[name] + self._pending.get(name, 0)
            else:
                seen = totals[name]
        return Hit(seen, end)


def _add(redis, batch: dict[str, int], expire_at: int) -> dict[str, int]:
    """Add ``batch`` to Redis in one round trip; each key expires after its window."""
    pipe = redis.pipeline(transaction=False)
    for name, n in batch.items():
        pipe.incrby(name, n)
        pipe.expireat(name, expire_at, nx=True)
    replies = pipe.execute()
    return {name: int(total) for name, total in zip(batch, replies[::2], strict=True)}
