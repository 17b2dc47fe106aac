"""MailerLite subscriber exports (Subscribers > Export, or a group's export).

The export's first columns are ``Subscriber`` (the address; ``Email`` in some
exports), ``Name`` (the first name), ``Last name``, ``Groups`` (comma-separated
group names) and ``Status``: ``Active``, ``Unsubscribed``, ``Bounced``, ``Junk``
(marked as spam: a complaint) or ``Unconfirmed`` (double opt-in not completed).
Then the sign-up record (``Subscribed``, ``Opted in``, ``IP address``), engagement
counts (``Sent``, ``Opens``, ``Clicks``: dropped) and one column per custom field
(``Company``, ``Country``, ``City``, ``Phone``, ...). The file is often
semicolon-separated, which the reader finds on its own.
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
    "unsubscribed": "unsubscribed",
    "bounced": "bounced",
    "junk": "complained",
    "unconfirmed": "pending",
}
REASONS = {
    "unsubscribed": "unsubscribed in MailerLite",
    "bounced": "bounced in MailerLite",
    "junk": "marked as junk (spam) in MailerLite",
}


class MailerLite(SourceFormat):
    name = "mailerlite"
    title = "MailerLite export"
    other_columns_as_attributes = True  # custom fields
    dropped = frozenset({"sent", "opens", "clicks", "openrate", "clickrate"})
    columns = MappingProxyType(
        {
            "email": ("subscriber", "email"),
            "first_name": ("name",),
            "last_name": ("lastname",),
            "groups": ("groups",),
            "status": ("status",),
            "subscribed_at": ("subscribed", "subscribedat", "dateadded"),
            "subscribed_ip": ("ipaddress", "signupip", "subscribedip"),
            "confirmed_at": ("optedin", "optedinat", "confirmedat"),
            "confirmed_ip": ("optinip", "confirmedip"),
            "unsubscribed_at": ("unsubscribedat", "unsubscribed"),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if "subscriber" in keys and keys & {"groups", "status", "lastname"}:
            return "subscribers"
        if {"email", "name", "lastname", "groups", "status"} <= keys:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        raw = get("status", "").lower()
        status = mapped_status(get("status", ""), STATUSES, "Status")
        return SourceRow(
            email=get("email", ""),
            status=status,
            # "Name" is the first name: the surname is its own column, kept with it.
            name=" ".join(filter(None, (get("first_name"), get("last_name")))),
            tags=split_list(get("groups", "")),
            subscribed_at=parse_time(get("subscribed_at", ""), "Subscribed"),
            subscribed_ip=get("subscribed_ip") or None,
            confirmed_at=parse_time(get("confirmed_at", ""), "Opted in"),
            confirmed_ip=get("confirmed_ip") or None,
            status_at=parse_time(get("unsubscribed_at", ""), "Unsubscribed at"),
            reason=REASONS.get(raw),
        )
