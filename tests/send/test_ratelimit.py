"""The one rate limiter shared by every connection."""

from __future__ import annotations

import threading
import time

import pytest

from newsletter.send.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_grants_are_spaced_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)

    waits = [limiter.acquire() for _ in range(5)]

    assert waits == pytest.approx([0.0, 0.1, 0.1, 0.1, 0.1])
    assert limiter.acquire(100) == pytest.approx(0.1)
    assert limiter.acquire() == pytest.approx(10.0)  # after 100 at 10/s: ten quiet seconds


def test_parallel_connections_share_one_pace() -> None:
    limiter = RateLimiter(200)
    started = time.monotonic()

    def connection() -> None:
        for _ in range(50):
            limiter.acquire()

    threads = [threading.Thread(target=connection) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 200 messages at 200/s together: about a second, not a quarter of one.
    assert time.monotonic() - started >= 0.95


def test_an_hourly_cap_holds_the_rest_until_the_window_slides() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=100, clock=clock, sleep=clock.sleep)

    assert limiter.acquire(60) == 0.0
    clock.now += 600
    assert limiter.acquire(40) == 0.0
    assert limiter.acquire(10) == 3000.0  # the first 60 leave the window an hour after them
    assert limiter.largest_grant == 100


def test_a_daily_cap_counts_what_earlier_runs_sent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_day=1000, clock=clock, sleep=clock.sleep)
    limiter.preload([(3600.0, 990)])  # an hour ago

    assert limiter.acquire(10) == 0.0
    assert limiter.acquire(1) == 86400.0 - 3600.0
