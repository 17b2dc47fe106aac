"""Buttondown's subscriber export (``subscribers.csv``).

Assumed from Buttondown's API (its subscriber object and its published enum of
subscriber types) and the columns of exports seen: ``email`` (or ``email_address``),
``notes``, ``metadata`` (a JSON object), ``tags``, ``referrer_url``,
``creation_date``, ``secondary_id``, ``upgrade_date``, ``type`` (or
``subscriber_type``), and for unsubscribers ``unsubscription_date`` and
``unsubscription_reason``. Types that receive email are active, ``unactivated``
is pending, and every removed, unsubscribed, undeliverable or spammy type is
suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.store.importers.base import (
    SourceFormat,
    SourceRow,
    json_attributes,
    mapped_status,
    parse_time,
    split_list,
)

STATUSES = {
    "regular": "active",
    "premium": "active",
    "gifted": "active",
    "trialed": "active",
    "complimentary": "active",
    "churning": "active",
    "churned": "active",  # a former paid subscriber who still gets the free issues
    "unpaid": "active",
    "past_due": "active",
    "paused": "active",
    "unactivated": "pending",
    "unsubscribed": "unsubscribed",
    "removed": "unsubscribed",
    "blocked": "unsubscribed",
    "spammy": "unsubscribed",
    "undeliverable": "bounced",
    "complained": "complained",
}
_REASONS = {
    "removed": "removed in Buttondown",
    "blocked": "blocked in Buttondown",
    "spammy": "flagged as spam in Buttondown",
    "undeliverable": "undeliverable in Buttondown",
}


class Buttondown(SourceFormat):
    json_attributes_field = "metadata"
    name = "buttondown"
    title = "Buttondown export"
    columns = MappingProxyType(
        {
            "email": ("email", "emailaddress"),
            "type": ("type", "subscribertype"),
            "notes": ("notes",),
            "metadata": ("metadata",),
            "tags": ("tags",),
            "referrer_url": ("referrerurl",),
            "creation_date": ("creationdate",),
            "upgrade_date": ("upgradedate",),
            "secondary_id": ("secondaryid",),
            "unsubscription_date": ("unsubscriptiondate", "unsubscribedat"),
            "unsubscription_reason": ("unsubscriptionreason",),
            "source": ("source",),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        has_type = bool(keys & {"type", "subscribertype"})
        if has_type and keys & {"creationdate", "secondaryid", "upgradedate"}:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        kind_value = get("type", "").lower()
        status = mapped_status(kind_value, STATUSES, "type")
        attributes = json_attributes(get("metadata", ""), "metadata")
        attributes |= {
            f"buttondown_{field}": get(field, "")
            for field in ("notes", "referrer_url", "upgrade_date", "secondary_id")
            if get(field)
        }
        if status == "active" and kind_value != "regular":
            attributes["buttondown_type"] = kind_value  # premium, gifted, ...: the plan
        reason = None
        if status in ("unsubscribed", "bounced", "complained"):
            reason = get("unsubscription_reason") or _REASONS.get(kind_value, kind_value)
        return SourceRow(
            email=get("email", ""),
            status=status,
            tags=split_list(get("tags", "")),
            subscribed_at=parse_time(get("creation_date", ""), "creation_date"),
            status_at=parse_time(get("unsubscription_date", ""), "unsubscription_date"),
            reason=reason,
            source=get("source", ""),
            attributes=attributes,
        )
