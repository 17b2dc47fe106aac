"""A plain CSV: this project's own export, a spreadsheet, another tool's simple list.

Columns are found by common aliases (``E-mail``, ``First Name`` + ``Last Name``, ...).
A ``status`` cell may use another platform's word (Mailchimp's ``cleaned`` is
bounced); an empty one takes the import's ``--status``; any other value rejects the
row. The consent columns our export writes are read back, so an export imports into
a fresh store unchanged. Any other column is kept as an attribute under its header's
name (``Country`` is ``attributes.Country`` in a segment), as the services' custom
fields are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.store.importers.base import (
    RowError,
    SourceFormat,
    SourceRow,
    json_attributes,
    parse_time,
)

# Status words other platforms export, mapped to ours.
STATUSES = {status: status for status in SUBSCRIBER_STATUSES} | {
    "subscribed": "active",
    "confirmed": "active",
    "enabled": "active",
    "unconfirmed": "pending",
    "cleaned": "bounced",
    "spam": "complained",
    "blocklisted": "unsubscribed",
    "blacklisted": "unsubscribed",
    "cancelled": "unsubscribed",
    "canceled": "unsubscribed",
    "optedout": "unsubscribed",
    "opted out": "unsubscribed",
    "opted-out": "unsubscribed",
    "disabled": "unsubscribed",
}


class PlainCsv(SourceFormat):
    name = "csv"
    title = "CSV file"
    other_columns_as_attributes = True  # a spreadsheet's own columns: country, plan, ...
    json_attributes_field = "attributes"
    columns = MappingProxyType(
        {
            "email": ("email", "emailaddress", "mail", "emailadresse", "correo"),
            "name": ("name", "fullname", "displayname"),
            "first_name": ("firstname", "givenname", "fname", "forename"),
            "last_name": ("lastname", "surname", "familyname", "lname"),
            "topics": ("topics", "topic", "interests", "lists"),
            "status": ("status", "state"),
            "subscribed_at": (
                "subscribedat",
                "subscribed",
                "optintime",
                "signupdate",
                "dateadded",
                "createdat",
            ),
            "subscribed_ip": ("subscribedip", "optinip", "signupip"),
            "confirmed_at": ("confirmedat", "confirmtime"),
            "confirmed_ip": ("confirmedip", "confirmip"),
            "unsubscribed_at": ("unsubscribedat", "unsubtime"),
            "unsubscribe_source": ("unsubscribesource",),
            "unsubscribe_reason": ("unsubscribereason", "unsubreason"),
            "source": ("source",),
            "attributes": ("attributes",),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        return ""  # the fallback: any file with an email column

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        raw_status = get("status", "")
        status = ""
        if raw_status:
            status = STATUSES.get(raw_status.lower(), "")
            if not status:
                raise RowError(
                    f"unknown status {raw_status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
                )
        return SourceRow(
            email=get("email", ""),
            status=status,
            name=_full_name(get("name", ""), get("first_name", ""), get("last_name", "")),
            topics=get("topics", ""),
            subscribed_at=_time(get("subscribed_at"), "subscribed_at"),
            subscribed_ip=get("subscribed_ip") or None,
            confirmed_at=_time(get("confirmed_at"), "confirmed_at"),
            confirmed_ip=get("confirmed_ip") or None,
            status_at=_time(get("unsubscribed_at"), "unsubscribed_at"),
            # Present but empty is kept empty: an export's own record, read back.
            reason=get("unsubscribe_reason"),
            status_source=get("unsubscribe_source") or None,
            source=get("source", ""),
            attributes=json_attributes(get("attributes", ""), "attributes"),
        )


def _time(value: str | None, column: str) -> dt.datetime | None:
    return parse_time(value, column) if value else None


def _full_name(name: str, first: str, last: str) -> str:
    """``name`` with ``last name`` beside it is a first name (MailerLite's, a
    spreadsheet's): the surname is kept, unless the name already ends with it."""
    if not name:
        return " ".join(filter(None, (first, last)))
    if last and not name.casefold().endswith(last.casefold()):
        return f"{name} {last}"
    return name
