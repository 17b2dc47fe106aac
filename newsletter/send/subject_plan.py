"""A send's subject test as its plan shows it (:class:`SubjectPlan`): before the
campaign starts, the sample as it will be drawn (:func:`planned`); after, as recorded,
with who is still pending in each phase (:func:`started`). The test itself is
:mod:`newsletter.send.subject_test`'s."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.config import AbSettings
from newsletter.send.campaign_rows import engine_of
from newsletter.send.subject_test import SubjectTest, sample_size
from newsletter.store import Store
from newsletter.store.subject_tests import count_by_variant


@dataclass(frozen=True)
class SubjectPlan:
    """A send's subject test, for the plan: as it will start, or as it stands."""

    variants: tuple[str, ...]
    metric: str
    sample_percent: str
    sample: tuple[int, ...]  # readers per variant: as they will be drawn, or were
    rest: int  # readers who get the winner
    rest_at: dt.datetime  # when the rest goes: planned from now, or recorded
    test: SubjectTest | None  # as recorded, once the campaign started
    pending_sample: int = 0  # of a started test: still to hand over
    pending_rest: int = 0
    now: dt.datetime | None = None
    settings: AbSettings | None = None  # of a test not started yet: what it starts with
    picked: bool = False  # --pick: the rest goes now

    @property
    def rest_due(self) -> bool:
        """The rest may go now: its time came, or the winner was picked."""
        test = self.test
        if test is None or self.now is None:
            return False
        return self.picked or test.winner is not None or self.now >= test.rest_at


def planned(
    variants: Sequence[str], settings: AbSettings, audience: int, now: dt.datetime
) -> SubjectPlan:
    """The test of a campaign not started yet, over ``audience`` readers."""
    size = sample_size(audience, settings.sample, len(variants))
    count = len(variants)
    return SubjectPlan(
        variants=tuple(variants),
        metric=settings.metric,
        sample_percent=f"{settings.sample:g}",
        sample=tuple(size // count + (index < size % count) for index in range(count)),
        rest=audience - size,
        rest_at=now + settings.wait,
        test=None,
        settings=settings,
    )


def started(store: Store | Any, test: SubjectTest, now: dt.datetime) -> SubjectPlan:
    """The test of a started campaign, with who is still to be sent in each phase."""
    with engine_of(store).connect() as connection:
        states = count_by_variant(connection, test.campaign_id)
    numbers = range(1, len(test.variants) + 1)
    return SubjectPlan(
        variants=test.variants,
        metric=test.metric,
        sample_percent=test.sample_percent,
        sample=tuple(states.readers(number) for number in numbers),
        rest=states.readers(None),
        rest_at=test.rest_at,
        test=test,
        pending_sample=states.pending_sample,
        pending_rest=states.readers(None, "pending"),
        now=now,
    )
