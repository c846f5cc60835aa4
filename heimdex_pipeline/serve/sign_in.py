"""Sign-in attempts limited per client address: a token cannot be guessed through the form
(256 random bits could not be anyway), and a script hammering it gets a 429 with the seconds
to wait, instead of the server's time.

Behind a proxy the client address is the proxy's unless uvicorn is told to trust its
`X-Forwarded-For` (`--forwarded-allow-ips`): then each client is counted on its own."""

from __future__ import annotations

import math
import threading
import time
from collections import deque

ATTEMPTS = 10  # sign-ins a client address may try …
WINDOW_S = 60.0  # … in this many seconds
MAX_ADDRESSES = 10_000  # addresses remembered (the oldest forgotten first)


class SignInLimiter:
    """At most `attempts` sign-ins per address in any `window_s` seconds."""

    def __init__(self, attempts: int = ATTEMPTS, window_s: float = WINDOW_S, clock=time.monotonic):
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int | None:
        """Count an attempt from `address`; None if it may go ahead, else the whole seconds
        until it may try again (the attempt is not counted then)."""
        now = self.clock()
        with self._lock:
            times = self._seen.pop(address, None) or deque()
            while times and now - times[0] >= self.window_s:
                times.popleft()
            wait = None
            if len(times) >= self.attempts:
                wait = max(1, math.ceil(self.window_s - (now - times[0])))
            else:
                times.append(now)
            self._seen[address] = times  # the newest at the end: the oldest go first
            while len(self._seen) > MAX_ADDRESSES:
                self._seen.pop(next(iter(self._seen)))
            return wait
