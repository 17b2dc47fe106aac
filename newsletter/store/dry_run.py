"""A dry run of an import that reports what the run will do.

A real import commits each chunk, so a later file of a ZIP finds what the earlier
files wrote: an address in Mailchimp's unsubscribed file that is listed again in its
subscribed file is "suppressed (left alone)" the second time. A dry run writes
nothing, so :class:`DryRun` keeps what the earlier files *would* have written and
lays it over what the database holds before each chunk is planned, by the same
:func:`~newsletter.store.bulk_plan.plan_chunk` as the run. Statuses move by
:data:`~newsletter.store.statuses.MOVES`, as the run's writes would move them.

Within one file an address comes once (a duplicate is rejected before the store sees
it), so only the files before the last need remembering: ``remember`` is off for the
last, and a dry run of one big CSV keeps nothing in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection

from newsletter.store.addresses import address_key
from newsletter.store.bulk import read_chunk
from newsletter.store.bulk_plan import BulkOutcome, Candidate, Found, plan_chunk
from newsletter.store.statuses import LEAVING, MOVES


class _Planned(NamedTuple):
    """A subscriber as the earlier files would have left it (the columns a plan reads)."""

    id: int  # the database's, or a negative stand-in for a row the dry run added
    email_key: str
    name: str
    status: str
    attributes: dict[str, Any]


class DryRun:
    def __init__(self, *, remember: bool = True) -> None:
        self.remember = remember  # off for the last file: nothing comes after it
        self._rows: dict[str, _Planned] = {}
        self._topics: dict[int, set[str]] = {}

    def plan(
        self, connection: Connection, candidates: Sequence[Candidate], when: dt.datetime
    ) -> list[BulkOutcome]:
        """The outcome of each candidate, as the run will have it; nothing is written."""
        keys = [address_key(candidate.email) for candidate in candidates]
        found = self._lay_over(read_chunk(connection, keys), keys)
        outcomes = plan_chunk(candidates, keys, found, when).outcomes
        if self.remember:
            for candidate, key, outcome in zip(candidates, keys, outcomes, strict=True):
                if outcome != "suppressed":
                    self._record(candidate, key, found)
        return outcomes

    def _lay_over(self, found: Found, keys: Sequence[str]) -> Found:
        if not self._rows:
            return found
        existing = dict(found.existing)
        topics = dict(found.topics)
        for key in keys:
            row = self._rows.get(key)
            if row is not None:
                existing[key] = row  # type: ignore[assignment]  # the same columns
                topics[row.id] = self._topics[row.id]
        return Found(found.erased, existing, topics)

    def _record(self, candidate: Candidate, key: str, found: Found) -> None:
        row = found.existing.get(key)
        if row is None:  # added
            stand_in = -1 - len(self._rows)
            self._rows[key] = _Planned(
                stand_in, key, candidate.name, candidate.status, dict(candidate.attributes)
            )
            self._topics[stand_in] = set(candidate.topics)
            return
        status = row.status
        leaving = LEAVING.get(candidate.status)
        if leaving is not None and row.status in MOVES[leaving].sources:
            status = candidate.status
        self._rows[key] = _Planned(
            row.id,
            key,
            candidate.name or row.name,
            status,
            {**row.attributes, **candidate.attributes},
        )
        self._topics[row.id] = found.topics.get(row.id, set()) | set(candidate.topics)
