"""Capped exponential backoff with jitter, for answers that mean "try later"."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.config import SendingSettings


@dataclass(frozen=True)
class Backoff:
    retries: int  # tries after the first one
    initial: float  # seconds before the first retry
    maximum: float  # the cap
    # Told what each wait is for, before it starts (the CLI prints it: a run that
    # sits silent for a minute looks hung).
    notify: Callable[[str], None] = field(default=lambda message: None)

    @classmethod
    def from_settings(
        cls, sending: SendingSettings, *, notify: Callable[[str], None] | None = None
    ) -> Backoff:
        backoff = cls(sending.retries, sending.retry_delay, sending.retry_max_delay)
        return backoff if notify is None else dataclasses.replace(backoff, notify=notify)

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (0-based): the capped doubling, half of it
        random so that parallel connections do not all come back at the same moment."""
        ceiling = min(self.maximum, self.initial * 2.0**retry)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def before_retry(self, retry: int, *, at_least: float = 0.0, reason: str = "") -> float:
        """The seconds to wait before retry ``retry``, announced to ``notify``;
        ``at_least`` is what the server asked for, ``reason`` the last answer. A campaign's
        provider passes them to its :class:`~newsletter.send.providers.DeliveryLog`, which
        waits with the recipients back in ``pending``."""
        seconds = max(self.delay(retry), at_least)
        because = f" after {reason}" if reason else ""
        self.notify(f"retry {retry + 1} of {self.retries} in {seconds:.1f} s{because}")
        return seconds
