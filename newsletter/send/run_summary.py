"""What a run of a campaign reports: :class:`Progress` after every batch, and
:class:`SendSummary` when it ends (``send``, ``run-due`` and the automations read it)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Progress:
    """Counts of this run so far, given to the progress callback after every batch."""

    total: int  # recipients this run expects to hand over
    done: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    unknown: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, status: str, count: int = 1) -> None:
        """Count ``count`` recipients that ended this run as ``status``."""
        setattr(self, status, getattr(self, status) + count)
        self.done += count

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SendSummary:
    campaign_id: int | None
    slug: str
    provider: str
    dry_run: bool
    sent: int  # this run
    failed: int
    skipped: int
    deferred: int
    unknown: int
    recovered_unknown: int  # in flight when an earlier run died, found at the start
    requeued_unknown: int  # put back by --retry-unknown
    seconds: float
    totals: dict[str, int]  # the whole campaign's ledger, after this run
    stopped: str | None  # why the run stopped early, if it did
    requeued_failed: int = 0  # put back by --retry-failed
    # A subject test's rest, waiting for its winner: when it is due (run-due sends it),
    # and how many readers it goes to (a sample reader still pending is not one of them).
    rest_at: dt.datetime | None = None
    rest_pending: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rest_at"] = self.rest_at.isoformat() if self.rest_at else None
        return data
