"""Mailchimp audience exports: the subscribed, unsubscribed and cleaned members CSVs.

Mailchimp's "Export audience" gives a ZIP with one CSV per status
(``subscribed_members_export_<id>.csv``, ``unsubscribed_...``, ``cleaned_...`` and,
for contacts who never opted in to marketing, ``nonsubscribed_...``). The files
share the header ``Email Address, First Name, Last Name, <merge fields and group
categories>, MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME, CONFIRM_IP,
LATITUDE, LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED, LEID,
EUID, NOTES, TAGS``; the unsubscribed file adds ``UNSUB_TIME, UNSUB_CAMPAIGN_TITLE,
UNSUB_CAMPAIGN_ID, UNSUB_REASON, UNSUB_REASON_OTHER`` and the cleaned file
``CLEAN_TIME, CLEAN_CAMPAIGN_TITLE, CLEAN_CAMPAIGN_ID``. An unsubscribe whose reason
says abuse or spam (``Abuse (reported as spam)``) is a complaint. Times are UTC,
``YYYY-MM-DD HH:MM:SS``. TAGS holds quoted, comma-separated tags
(``"Food & Drink","VIP"``); a group category column holds the chosen group names,
comma-separated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from newsletter.store.importers.base import (
    RowError,
    SourceFormat,
    SourceRow,
    column_key,
    mapped_status,
    parse_time,
    split_list,
)

# Group category columns: the usual titles; newsletter.yaml's imports.group_columns adds more.
GROUP_COLUMNS = ("interests", "groups", "topics", "lists")
_GROUP_WORDS = ("interest", "group", "topic", "list", "categor", "preferen")
# A "status" column, where an export has one (the newer all-contacts export).
STATUSES = {
    "subscribed": "active",
    "unsubscribed": "unsubscribed",
    "cleaned": "bounced",
    "pending": "pending",
    "archived": "unsubscribed",
}
# An unsubscribe reason that is a complaint: "Abuse (reported as spam)", "The emails are
# spam and should be reported".
_REPORTED_AS_SPAM = re.compile(r"\b(?:abuse|spam)\b", re.IGNORECASE)
KINDS = {
    "subscribed members": "active",
    "unsubscribed members": "unsubscribed",
    "cleaned members": "bounced",
}


class Mailchimp(SourceFormat):
    name = "mailchimp"
    title = "Mailchimp export"
    other_columns_as_attributes = True  # merge fields: phone, birthday, company, ...
    reads_groups = True
    dropped = frozenset(
        {
            "latitude",
            "longitude",
            "gmtoff",
            "dstoff",
            "lastchanged",
            "unsubcampaignid",
            "cleancampaignid",
        }
    )

    def __init__(self, group_columns: Sequence[str] = ()) -> None:
        self.columns = {
            "email": ("emailaddress", "email"),
            "first_name": ("firstname", "fname"),
            "last_name": ("lastname", "lname"),
            "status": ("status",),
            "optin_time": ("optintime",),
            "optin_ip": ("optinip",),
            "confirm_time": ("confirmtime",),
            "confirm_ip": ("confirmip",),
            "unsub_time": ("unsubtime",),
            "unsub_reason": ("unsubreason",),
            "unsub_reason_other": ("unsubreasonother",),
            "unsub_campaign": ("unsubcampaigntitle",),
            "clean_time": ("cleantime",),
            "clean_campaign": ("cleancampaigntitle",),
            "tags": ("tags",),
            "member_rating": ("memberrating",),
            "timezone": ("timezone",),
            "country": ("cc",),
            "region": ("region",),
            "leid": ("leid",),
            "euid": ("euid",),
            "notes": ("notes",),
        }
        self.group_keys = frozenset(GROUP_COLUMNS) | {column_key(name) for name in group_columns}
        self.group_fields = tuple(f"group:{key}" for key in sorted(self.group_keys))

    def field_for(self, key: str) -> str | None:
        if key in self.group_keys:
            return f"group:{key}"  # several group categories: one field each
        return super().field_for(key)

    def may_hold_groups(self, key: str) -> bool:
        # A group category's column is titled by the editor ("Newsletter Interests",
        # "Which topics?"): the header cannot say for sure, its words can hint.
        return any(word in key for word in _GROUP_WORDS)

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if "emailaddress" not in keys or not keys & {"optintime", "memberrating", "leid", "euid"}:
            return None
        return self.kind(keys, path)

    def kind(self, keys: frozenset[str], path: Path) -> str:
        filename = path.name.lower()
        if filename.startswith("nonsubscribed"):
            return "non-subscribed contacts"
        if "unsubtime" in keys or filename.startswith("unsubscribed"):
            return "unsubscribed members"
        if "cleantime" in keys or filename.startswith("cleaned"):
            return "cleaned members"
        if "status" in keys:
            return "members with a status column"
        return "subscribed members"

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        if kind == "non-subscribed contacts":
            raise RowError(
                "a non-subscribed Mailchimp contact never opted in to marketing email; "
                "it is not imported"
            )
        status = KINDS.get(kind) or mapped_status(get("status", ""), STATUSES, "status")
        reason: str | None = None
        status_at = None
        if status == "unsubscribed":
            status_at = parse_time(get("unsub_time", ""), "UNSUB_TIME")
            reason = ": ".join(filter(None, (get("unsub_reason"), get("unsub_reason_other"))))
            if _REPORTED_AS_SPAM.search(reason):
                status = "complained"  # "Abuse (reported as spam)": a complaint, not a wish
            if get("unsub_campaign"):
                reason = f"{reason or 'unsubscribed'} (campaign {get('unsub_campaign')!r})"
            reason = reason or "unsubscribed in Mailchimp"
        elif status == "bounced":
            status_at = parse_time(get("clean_time", ""), "CLEAN_TIME")
            reason = "cleaned by Mailchimp (the address bounced)"
            if get("clean_campaign"):
                reason += f" after campaign {get('clean_campaign')!r}"
        tags = split_list(get("tags", ""))
        for group_field in self.group_fields:
            if value := get(group_field):
                tags += split_list(value)
        attributes = {label: get(field, "") for field, label in _ATTRIBUTES.items() if get(field)}
        return SourceRow(
            email=get("email", ""),
            status=status,
            name=" ".join(filter(None, (get("first_name"), get("last_name")))),
            tags=tags,
            subscribed_at=parse_time(get("optin_time", ""), "OPTIN_TIME"),
            subscribed_ip=get("optin_ip") or None,
            confirmed_at=parse_time(get("confirm_time", ""), "CONFIRM_TIME"),
            confirmed_ip=get("confirm_ip") or None,
            status_at=status_at,
            reason=reason,
            attributes=attributes,
        )


_ATTRIBUTES = {
    "member_rating": "mailchimp_member_rating",
    "timezone": "timezone",
    "country": "country",
    "region": "region",
    "leid": "mailchimp_leid",
    "euid": "mailchimp_euid",
    "notes": "notes",
}
