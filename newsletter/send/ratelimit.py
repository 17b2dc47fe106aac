"""One global pace for a whole run, shared by every connection of a provider.

``reserve(n)`` books the moment ``n`` more messages may go out and says how many
seconds away it is; ``acquire(n)`` books and sleeps until then. A campaign reserves
and waits *before* it hands anyone over (:class:`newsletter.send.ledger_log.LedgerLog`),
so while it waits its recipients are still ``pending``: a kill or Ctrl-C then leaves
nothing "in flight" that the provider never saw. The per-second rate spaces
grants evenly (a request for 1,000 messages at 100/s is followed by 10 quiet seconds);
the optional per-hour and per-day caps are sliding windows, for providers that count
that way. Parallel SMTP connections all draw from one limiter, so two connections at
"50/s" send 50 messages a second together, not 100.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

HOUR = 3600.0
DAY = 86400.0


class _Window:
    """A sliding-window cap: at most ``cap`` messages in any ``seconds``."""

    def __init__(self, seconds: float, cap: int) -> None:
        self.seconds = seconds
        self.cap = cap
        # (time, count), oldest first; grants under a second apart share an entry,
        # so a day-long window holds at most 86,400 of them.
        self.grants: deque[list[float]] = deque()
        self.used = 0

    def earliest(self, start: float, count: int) -> float:
        """The first moment from ``start`` with room for ``count`` more messages."""
        self._expire(start)
        count = min(count, self.cap)  # a grant larger than the cap waits for an empty window
        if self.used + count <= self.cap:
            return start
        used = self.used
        for at, granted in self.grants:
            used -= int(granted)
            if used + count <= self.cap:
                return at + self.seconds
        return start

    def record(self, at: float, count: int) -> None:
        last = self.grants[-1] if self.grants else None
        if last is not None and 0 <= at - last[0] < 1.0:
            last[0] = at  # the later time: the merged entry expires no earlier than its parts
            last[1] += count
        else:
            self.grants.append([at, count])
        self.used += count

    def _expire(self, now: float) -> None:
        while self.grants and self.grants[0][0] <= now - self.seconds:
            self.used -= int(self.grants.popleft()[1])


class RateLimiter:
    def __init__(
        self,
        per_second: float | None = None,
        *,
        per_hour: int | None = None,
        per_day: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self._windows = [
            _Window(seconds, cap) for seconds, cap in ((HOUR, per_hour), (DAY, per_day)) if cap
        ]
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free = float("-inf")

    @property
    def largest_grant(self) -> int | None:
        """The most messages one ``acquire`` should ask for: the smallest cap, if any."""
        return min((window.cap for window in self._windows), default=None)

    def preload(self, sent: Iterable[tuple[float, int]]) -> None:
        """Count messages sent before this run, as ``(seconds ago, count)``, against the caps."""
        now = self._clock()
        with self._lock:
            for age, count in sorted(sent, key=lambda item: -item[0]):
                for window in self._windows:
                    window.record(now - age, count)

    def acquire(self, count: int = 1) -> float:
        """Block until ``count`` messages may go; returns the seconds waited."""
        wait = self.reserve(count)
        if wait > 0:
            self._sleep(wait)
        return wait

    def reserve(self, count: int = 1) -> float:
        """Book the first moment ``count`` more messages may go; the seconds until then
        (0.0: at once). The caller waits that long itself, then sends."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free)
            while self._windows:  # a later start for one window may be too early for another
                later = max(window.earliest(start, count) for window in self._windows)
                if later <= start:
                    break
                start = later
            for window in self._windows:
                window.record(start, count)
            # Grants stay in time order (the windows rely on it), paced by the rate if any.
            self._next_free = start + (count / self.per_second if self.per_second else 0.0)
        return max(start - now, 0.0)
