"""Capped exponential backoff with jitter, for answers that mean "try later"."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.config import SendingSettings


@dataclass(frozen=True)
class Backoff:
    retries: int  # tries after the first one
    initial: float  # seconds before the first retry
    maximum: float  # the cap
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, sending: SendingSettings) -> Backoff:
        return cls(sending.retries, sending.retry_delay, sending.retry_max_delay)

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based): the capped doubling, half of it
        random so that parallel connections do not all come back at the same moment."""
        ceiling = min(self.maximum, self.initial * 2**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def wait(self, retry: int, *, at_least: float = 0.0) -> None:
        """Sleep before retry ``retry``; ``at_least`` is what the server asked for."""
        self.sleep(max(self.delay(retry), at_least))
