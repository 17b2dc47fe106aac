"""Kit (formerly ConvertKit) subscriber exports.

Kit's API documents a subscriber's ``state`` as ``active``, ``inactive`` (has not
confirmed), ``cancelled`` (unsubscribed), ``bounced`` or ``complained``, with
``first_name``, ``email_address``, ``created_at`` and ``canceled_at``. Its CSV
export is not documented; assumed from exported samples: ``first_name``, ``email``
(or ``email_address``), ``state`` (or ``status``), ``created_at``, ``canceled_at``
(or ``cancelled_at``), ``tags`` (comma-separated), other columns custom fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.store.importers.base import (
    SourceFormat,
    SourceRow,
    mapped_status,
    parse_time,
    split_list,
)

STATUSES = {
    "active": "active",
    "inactive": "pending",
    "cancelled": "unsubscribed",
    "canceled": "unsubscribed",
    "bounced": "bounced",
    "complained": "complained",
}


class Kit(SourceFormat):
    name = "kit"
    title = "Kit (ConvertKit) export"
    other_columns_as_attributes = True  # custom fields
    columns = MappingProxyType(
        {
            "email": ("emailaddress", "email"),
            "first_name": ("firstname",),
            "last_name": ("lastname",),
            "state": ("state", "status"),
            "created_at": ("createdat",),
            "canceled_at": ("canceledat", "cancelledat"),
            "tags": ("tags",),
            "id": ("id", "subscriberid"),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if "firstname" in keys and keys & {"canceledat", "cancelledat"}:
            return "subscribers"
        if "firstname" in keys and "state" in keys and keys & {"email", "emailaddress"}:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        # Without a state column the import's --status applies; an empty cell in one
        # is not understood, and rejected like any other unknown state.
        state = get("state", "").lower()
        status = mapped_status(state, STATUSES, "state") if "state" in fields else ""
        attributes = {"kit_id": get("id", "")} if get("id") else {}
        return SourceRow(
            email=get("email", ""),
            status=status,
            name=" ".join(filter(None, (get("first_name"), get("last_name")))),
            tags=split_list(get("tags", "")),
            subscribed_at=parse_time(get("created_at", ""), "created_at"),
            status_at=parse_time(get("canceled_at", ""), "canceled_at"),
            reason=f"{state} in Kit"
            if status in ("unsubscribed", "bounced", "complained")
            else None,
            attributes=attributes,
        )
