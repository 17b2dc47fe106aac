"""What merging a chunk of an import means, decided without the database: each
:class:`Candidate` (one validated row) against what :func:`newsletter.store.bulk.read_chunk`
found of its address, by the rules in :mod:`newsletter.store.bulk`. A dry run plans
with it too."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from sqlalchemy import Row

from newsletter.models import SUPPRESSED_STATUSES
from newsletter.store.schema import new_link_key
from newsletter.store.statuses import StatusChange

BulkOutcome = Literal["added", "updated", "unchanged", "suppressed"]


class Candidate(NamedTuple):
    """One validated row: an address (normalised) and what the file says about it.

    A named tuple rather than a dataclass: an import makes one per row, and a frozen
    dataclass takes several times as long to build.
    """

    email: str
    name: str = ""
    topics: tuple[str, ...] = ()
    status: str = "active"
    source: str = "import"
    subscribed_at: dt.datetime | None = None
    attributes: Mapping[str, str] = MappingProxyType({})
    # The consent record another platform kept, where the file has it.
    subscribed_ip: str | None = None
    confirmed_at: dt.datetime | None = None
    confirmed_ip: str | None = None
    status_at: dt.datetime | None = None  # when they unsubscribed, bounced or complained
    reason: str | None = None  # why, in the source's words (None: not given)
    status_source: str | None = None  # who recorded the opt-out, if not this import


class Found(NamedTuple):
    """What the database holds of a chunk's addresses."""

    erased: set[str]  # look-up keys whose address was erased (its hash is suppressed)
    existing: dict[str, Row[Any]]  # look-up key -> id, email_key, name, status, attributes
    topics: dict[int, set[str]]  # existing subscriber id -> its topics


@dataclass
class ChunkPlan:
    """What merging a chunk writes, and the outcome of each of its rows."""

    outcomes: list[BulkOutcome] = field(default_factory=list)
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    new_topics: list[tuple[str, ...]] = field(default_factory=list)  # per new row
    new_opt_outs: list[Candidate] = field(default_factory=list)  # new rows arriving suppressed
    changed_rows: list[dict[str, Any]] = field(default_factory=list)  # name, attributes
    added_topics: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    opt_outs: list[StatusChange] = field(default_factory=list)  # existing rows leaving
    # Existing rows whose only change is leaving: subscriber id -> position of its outcome.
    only_opting_out: dict[int, int] = field(default_factory=dict)


def plan_chunk(
    candidates: Sequence[Candidate], keys: Sequence[str], found: Found, when: dt.datetime
) -> ChunkPlan:
    """Decide what each candidate means, given what
    :func:`~newsletter.store.bulk.read_chunk` found (no database)."""
    plan = ChunkPlan()
    for candidate, key in zip(candidates, keys, strict=True):
        row = found.existing.get(key)
        if key in found.erased or (row is not None and row.status in SUPPRESSED_STATUSES):
            plan.outcomes.append("suppressed")
        elif row is None:
            plan.new_rows.append(_new_row(candidate, key, when))
            plan.new_topics.append(candidate.topics)
            if candidate.status in SUPPRESSED_STATUSES:
                plan.new_opt_outs.append(candidate)
            plan.outcomes.append("added")
        else:
            _plan_merge(plan, candidate, row, found.topics.get(row.id, set()), when)
    return plan


def _plan_merge(
    plan: ChunkPlan, candidate: Candidate, row: Row[Any], topics: set[str], when: dt.datetime
) -> None:
    """A pending or active subscriber: what the file adds, and an opt-out it records."""
    merged_attributes = {**row.attributes, **candidate.attributes}
    name = candidate.name or row.name
    extra_topics = [t for t in candidate.topics if t not in topics]
    changed_fields = [
        column
        for column, changed in (
            ("name", name != row.name),
            ("attributes", merged_attributes != row.attributes),
        )
        if changed
    ]
    opting_out = candidate.status in SUPPRESSED_STATUSES
    if not changed_fields and not extra_topics and not opting_out:
        plan.outcomes.append("unchanged")
        return
    if changed_fields or extra_topics:
        plan.changed_rows.append(
            {"b_id": row.id, "name": name, "attributes": merged_attributes, "updated_at": when}
        )
        plan.added_topics.extend({"subscriber_id": row.id, "topic": t} for t in extra_topics)
        plan.events.append(
            event_row(
                row.id,
                "updated",
                candidate.source,
                when,
                {"fields": changed_fields, "topics_added": extra_topics},
            )
        )
    elif opting_out:
        plan.only_opting_out[row.id] = len(plan.outcomes)
    if opting_out:
        plan.opt_outs.append(_opt_out(row.id, candidate))
    plan.outcomes.append("updated")


def _new_row(candidate: Candidate, key: str, when: dt.datetime) -> dict[str, Any]:
    # Every row names the same columns, so that a chunk is one executemany.
    return {
        "email": candidate.email,
        "email_key": key,
        "name": candidate.name,
        "status": candidate.status,
        "attributes": dict(candidate.attributes),
        "source": candidate.source,
        # The original opt-in time, when the file knows it, is the consent on record.
        "opt_in_at": candidate.subscribed_at or when,
        "opt_in_ip": candidate.subscribed_ip,
        "confirmed_at": candidate.confirmed_at,
        "confirmed_ip": candidate.confirmed_ip,
        **_unsubscribe_record(candidate, when),
        "link_key": new_link_key(),
        "legacy_links": False,
        # The editor vouches for an imported subscriber (unsubscribed ones included:
        # they were subscribers where the list came from); a pending one must confirm.
        "was_active": candidate.status != "pending",
    }


def _opt_out(subscriber_id: int, candidate: Candidate) -> StatusChange:
    """An existing subscriber leaving as the file says (if the status rules allow it)."""
    return StatusChange(
        subscriber_id,
        candidate.status,
        candidate.source,
        _reason(candidate),
        at=candidate.status_at,
        unsubscribe_source=candidate.status_source,
    )


def _unsubscribe_record(candidate: Candidate, when: dt.datetime) -> dict[str, Any]:
    if candidate.status != "unsubscribed":
        return {"unsubscribed_at": None, "unsubscribe_source": None, "unsubscribe_reason": None}
    return {
        "unsubscribed_at": candidate.status_at or when,
        "unsubscribe_source": candidate.status_source or candidate.source,
        "unsubscribe_reason": _reason(candidate),
    }


def _reason(candidate: Candidate) -> str:
    if candidate.reason is None and candidate.status == "unsubscribed":
        return "imported as unsubscribed"
    return candidate.reason or ""


def event_row(
    subscriber_id: int, event: str, source: str, when: dt.datetime, detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "subscriber_id": subscriber_id,
        "at": when,
        "event": event,
        "source": source,
        "ip": None,
        "detail": detail,
    }
