"""Ghost's members export (Members > Export, ``members.<date>.csv``).

Ghost documents these columns for its members CSV: ``id, email, name, note,
subscribed_to_emails, complimentary_plan, stripe_customer_id, created_at,
deleted_at, labels, tiers``. ``subscribed_to_emails=false`` is a member who gets no
newsletter: unsubscribed. A ``deleted_at`` time is a deleted member: unsubscribed
too. Labels are comma-separated and can become topics.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.store.importers.base import (
    SourceFormat,
    SourceRow,
    parse_flag,
    parse_time,
    split_list,
)


class Ghost(SourceFormat):
    name = "ghost"
    title = "Ghost members export"
    columns = MappingProxyType(
        {
            "id": ("id",),
            "email": ("email",),
            "name": ("name",),
            "note": ("note",),
            "subscribed": ("subscribedtoemails",),
            "complimentary_plan": ("complimentaryplan",),
            "stripe_customer_id": ("stripecustomerid",),
            "created_at": ("createdat",),
            "deleted_at": ("deletedat",),
            "labels": ("labels",),
            "tiers": ("tiers", "products"),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        return "members" if "email" in keys and "subscribedtoemails" in keys else None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        subscribed = parse_flag(get("subscribed", ""), "subscribed_to_emails")
        deleted_at = parse_time(get("deleted_at", ""), "deleted_at")
        reason = None
        if deleted_at is not None:
            reason = "member deleted in Ghost"
        elif not subscribed:
            reason = "not subscribed to emails in Ghost"
        attributes = {
            f"ghost_{field}": get(field, "")
            for field in ("id", "note", "complimentary_plan", "stripe_customer_id", "tiers")
            if get(field)
        }
        return SourceRow(
            email=get("email", ""),
            status="unsubscribed" if reason else "active",
            name=get("name", ""),
            tags=split_list(get("labels", "")),
            subscribed_at=parse_time(get("created_at", ""), "created_at"),
            status_at=deleted_at,
            reason=reason,
            attributes=attributes,
        )
