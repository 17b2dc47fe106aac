"""beehiiv subscriber exports (Audience > Subscribers > Export).

The export's columns are ``email, status, created_at`` followed by the acquisition
record (``utm_source, utm_medium, utm_channel, utm_campaign, referring_site,
referral_code``), the ``subscription_tier`` (free or premium) and one column per
custom field (``first_name``, ``last_name``, ...). ``status`` is a subscription's
status in beehiiv's API: ``active``; ``inactive`` (unsubscribed); ``validating``
(the address is being checked) and ``pending`` (not yet confirmed); ``invalid``
(the address failed beehiiv's validation: it cannot receive mail); and
``needs_attention`` (held by beehiiv for review). Times are UTC
(``2023-05-02 14:03:11 UTC`` or ISO 8601).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.store.importers.base import SourceFormat, SourceRow, mapped_status, parse_time

STATUSES = {
    "active": "active",
    "inactive": "unsubscribed",
    "unsubscribed": "unsubscribed",
    "validating": "pending",
    "pending": "pending",
    "needs_attention": "pending",  # not sent to until someone looks: never active
    "invalid": "bounced",
}
REASONS = {
    "inactive": "inactive in beehiiv (unsubscribed)",
    "unsubscribed": "unsubscribed in beehiiv",
    "invalid": "invalid in beehiiv (the address failed its validation)",
}
# The acquisition columns: recognise the export by them, keep them as attributes.
ACQUISITION = frozenset(
    {"utmsource", "utmmedium", "utmchannel", "utmcampaign", "referringsite", "referralcode"}
)


class Beehiiv(SourceFormat):
    name = "beehiiv"
    title = "beehiiv export"
    other_columns_as_attributes = True  # the acquisition record and custom fields
    columns = MappingProxyType(
        {
            "email": ("email",),
            "status": ("status",),
            "created_at": ("createdat",),
            "name": ("name",),
            "first_name": ("firstname",),
            "last_name": ("lastname",),
            "tier": ("subscriptiontier", "tier"),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if {"email", "status", "createdat"} <= keys and keys & ACQUISITION:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        raw = get("status", "").lower()
        status = mapped_status(raw, STATUSES, "status")
        attributes = {"beehiiv_subscription_tier": get("tier", "")}
        if raw != "active":
            attributes["beehiiv_status"] = raw  # "needs_attention" is worth a look
        name = get("name") or " ".join(filter(None, (get("first_name"), get("last_name"))))
        return SourceRow(
            email=get("email", ""),
            status=status,
            name=name,
            subscribed_at=parse_time(get("created_at", ""), "created_at"),
            reason=REASONS.get(raw),
            attributes=attributes,
        )
