"""listmonk's subscriber export (Subscribers > Export).

listmonk writes ``uuid, email, name, attributes, status, created_at, updated_at``:
``attributes`` a JSON object, ``status`` one of ``enabled``, ``disabled`` and
``blocklisted``. The export has no list memberships (listmonk issue #738); where a
``lists`` column holds them as the API gives them (a JSON array of
``{"name", "subscription_status"}``), list names become tags and a subscriber
unsubscribed from every list arrives unsubscribed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.safe_text import clean_text
from newsletter.store.importers.base import (
    RowError,
    SourceFormat,
    SourceRow,
    json_attributes,
    mapped_status,
    parse_time,
)

STATUSES = {
    "enabled": "active",
    "disabled": "unsubscribed",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",  # before listmonk v1.0
}


class Listmonk(SourceFormat):
    json_attributes_field = "attributes"
    name = "listmonk"
    title = "listmonk export"
    columns = MappingProxyType(
        {
            "uuid": ("uuid",),
            "email": ("email",),
            "name": ("name",),
            "attributes": ("attributes", "attribs"),
            "status": ("status",),
            "created_at": ("createdat",),
            "lists": ("lists", "subscriptions"),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if {"uuid", "email", "status"} <= keys and keys & {"attributes", "attribs"}:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        raw = get("status", "").lower()
        status = mapped_status(raw, STATUSES, "status")
        tags, list_status = _lists(get("lists", ""))
        reason = f"{raw} in listmonk" if status != "active" else None
        if status == "active" and list_status:
            status = list_status
            if status == "unsubscribed":
                reason = "unsubscribed from every list in listmonk"
        attributes = json_attributes(get("attributes", ""), "attributes")
        if get("uuid"):
            attributes["listmonk_uuid"] = get("uuid", "")
        return SourceRow(
            email=get("email", ""),
            status=status,
            name=get("name", ""),
            tags=tags,
            subscribed_at=parse_time(get("created_at", ""), "created_at"),
            reason=reason,
            attributes=attributes,
        )


def _lists(value: str) -> tuple[tuple[str, ...], str]:
    """List names, and the status the subscriptions give (unsubscribed from all, ...)."""
    if not value.strip():
        return (), ""
    try:
        items = json.loads(value)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise RowError('lists must be a JSON array like [{"name": "News", ...}]')
    names = tuple(
        clean_text(str(item["name"]))
        for item in items
        if item.get("name") and str(item.get("subscription_status", "")).lower() != "unsubscribed"
    )
    states = {str(item.get("subscription_status", "")).lower() for item in items}
    if states and states <= {"unsubscribed"}:
        return names, "unsubscribed"
    if states and states <= {"unconfirmed"}:
        return names, "pending"
    return names, ""
