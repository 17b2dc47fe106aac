"""Substack's subscriber export (Settings > Exports, ``email_list.<publication>.csv``).

Columns seen in Substack exports: ``email, active_subscription, expiry, plan,
email_disabled, created_at, first_payment_at`` (some add ``name`` and
``subscription_type``). ``email_disabled=true`` means the reader gets no email:
they unsubscribed or were removed, so the row arrives unsubscribed. A lapsed paid
plan (``active_subscription=false``) is still a free subscriber: active, with the
plan kept in the attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from newsletter.store.importers.base import SourceFormat, SourceRow, parse_flag, parse_time


class Substack(SourceFormat):
    name = "substack"
    title = "Substack export"
    columns = MappingProxyType(
        {
            "email": ("email",),
            "name": ("name",),
            "email_disabled": ("emaildisabled",),
            "active_subscription": ("activesubscription",),
            "plan": ("plan",),
            "subscription_type": ("subscriptiontype",),
            "expiry": ("expiry",),
            "created_at": ("createdat",),
            "first_payment_at": ("firstpaymentat",),
        }
    )

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        if "email" in keys and "emaildisabled" in keys:
            return "subscribers"
        return None

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        get = fields.get
        disabled = parse_flag(get("email_disabled", ""), "email_disabled")
        attributes = {
            f"substack_{field}": get(field, "")
            for field in ("plan", "subscription_type", "expiry", "first_payment_at")
            if get(field)
        }
        if get("active_subscription"):
            paid = parse_flag(get("active_subscription", ""), "active_subscription")
            attributes["substack_active_subscription"] = "true" if paid else "false"
        return SourceRow(
            email=get("email", ""),
            status="unsubscribed" if disabled else "active",
            name=get("name", ""),
            subscribed_at=parse_time(get("created_at", ""), "created_at"),
            reason="email disabled in Substack" if disabled else None,
            attributes=attributes,
        )
