"""Per-client request rate limits (a sliding one-minute window, in memory).

In memory means per process: run one API process per database, or put the
limit in front (a proxy) when scaling out. The window is exact: a client with
N requests/minute gets its (N+1)-th request refused until the oldest of the
last N is a minute old, and Retry-After says how long that is.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> int | None:
        """Record a request; return None if allowed, else the seconds to wait (>= 1)."""
        return self._check(key, limit, record=True)

    def blocked(self, key: str, limit: int) -> int | None:
        """Like ``hit`` without recording: the seconds to wait if ``key`` is at its limit, else None."""
        return self._check(key, limit, record=False)

    def _check(self, key: str, limit: int, *, record: bool) -> int | None:
        now = self._clock()
        with self._lock:
            # Only a recorded hit gives a key its queue: checking alone keeps nothing per key.
            q = self._hits.setdefault(key, deque()) if record else self._hits.get(key, deque())
            while q and q[0] <= now - WINDOW_S:
                q.popleft()
            if len(q) >= limit:
                return max(1, math.ceil(q[0] + WINDOW_S - now))
            if record:
                q.append(now)
            return None


# Wrong admin keys or dashboard passwords from one address within a minute before it is refused
# (429 with Retry-After) without even checking: guessing the key would take forever anyway, but
# an unthrottled endpoint is an invitation, and the refusals show up in the logs.
MAX_AUTH_FAILURES_PER_MINUTE = 10
