"""Migration 9's tables: who opened and clicked, and clicks per URL from a provider.

In their own module on the shared metadata (like :mod:`newsletter.store.scheduling`),
so that a parallel branch's edits to :mod:`newsletter.store.schema` do not collide.

- ``engagement_by_subscriber``: one row per (campaign, ``open`` or ``click``,
  subscriber): the first time the reader did it. Written by the providers' webhooks
  (their ``tracking``, from the subscriber id their events echo) and by
  the first-party open pixel with ``tracking.per_subscriber``. Unique opens and clicks
  are a count of rows, never a guess from totals. It holds no address and cascades
  when the subscriber is erased.
- ``provider_link_clicks``: clicks per URL of a campaign, from a provider's ``click``
  events (their URL), so ``report`` shows the top links for provider-tracked campaigns as
  it does for first-party ones (``campaign_links``). Keyed by the URL's SHA-256: a URL
  may be longer than PostgreSQL indexes a text key.

It is also the one home of how engagement is written, whoever counted it (the providers'
webhooks through :mod:`newsletter.send.provider_events`, the first-party links and pixel
through :mod:`newsletter.web.clicks`): :func:`add_totals` (``campaign_engagement``),
:func:`record_readers`, :func:`record_link_clickers` (``link_clicks_by_subscriber``),
:func:`add_link_clicks` (a provider's, per URL) and :func:`add_first_party_clicks`
(``campaign_links``), each in the caller's transaction. And of how it is read back:
:func:`readers_who` opened or clicked, whichever table recorded it, for the report, a
subject test's decision and a segment's ``clicked`` / ``opened within``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    CompoundSelect,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    select,
    union,
    update,
)

from newsletter.store.database import insert_on_conflict
from newsletter.store.scheduling import campaign_links, link_clicks_by_subscriber
from newsletter.store.schema import Id, UtcDateTime, campaign_engagement, metadata, subscribers
from newsletter.store.subscriber_rows import insert_ignoring_duplicates

_CHUNK = 500  # ids per IN (...) list

engagement_by_subscriber = Table(
    "engagement_by_subscriber",
    metadata,
    Column("campaign_id", Id, primary_key=True, autoincrement=False),
    Column("event", String(16), primary_key=True),
    Column(
        "subscriber_id",
        Id,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("at", UtcDateTime, nullable=False),
    sqlite_with_rowid=False,
)
# Migration 13. A segment's `clicked` / `opened within N days` reads only the recent
# rows of one event, from the index alone.
ENGAGEMENT_RECENT = Index(
    "ix_engagement_by_subscriber_event_at",
    engagement_by_subscriber.c.event,
    engagement_by_subscriber.c.at,
    engagement_by_subscriber.c.subscriber_id,
)

provider_link_clicks = Table(
    "provider_link_clicks",
    metadata,
    Column("campaign_id", Id, primary_key=True, autoincrement=False),
    Column("url_hash", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("clicks", Integer, nullable=False),
)


def readers_who(
    event: str,
    *,
    campaign_ids: Sequence[int] | None = None,
    since: dt.datetime | None = None,
    per_campaign: bool = False,
) -> Select[Any] | CompoundSelect[Any]:
    """Who opened (``event`` ``open``) or clicked (``click``), each reader once: a
    provider's events and the first-party pixel are in ``engagement_by_subscriber``, and
    first-party link clicks in ``link_clicks_by_subscriber``, so a click is in either or
    both. Its column is ``subscriber_id``; with ``per_campaign``, ``campaign_id`` comes
    first and each reader counts once per campaign. Only ``campaign_ids``' campaigns
    (each table's primary key leads with the campaign), only since ``since`` (the
    ``(event, at, subscriber_id)`` index: a segment reads only recent rows, from the
    index alone, so nothing else is selected then unless asked)."""

    def rows_of(table: Table, *conditions: ColumnElement[bool]) -> Select[Any]:
        if campaign_ids is not None:
            conditions += (table.c.campaign_id.in_(campaign_ids),)
        if since is not None:
            conditions += (table.c.at >= since,)
        columns = [table.c.campaign_id] if per_campaign else []
        return select(*columns, table.c.subscriber_id).where(*conditions)

    recorded = rows_of(engagement_by_subscriber, engagement_by_subscriber.c.event == event)
    if event != "click":
        return recorded
    return union(recorded, rows_of(link_clicks_by_subscriber))


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def existing_subscribers(connection: Connection, ids: Iterable[int]) -> set[int]:
    """The ids among ``ids`` whose subscriber exists now (not erased since a signed key
    or an echoed id was issued): only those may be written into tables that refer to
    subscribers."""
    wanted = sorted(set(ids))
    existing: set[int] = set()
    for start in range(0, len(wanted), _CHUNK):
        existing.update(
            connection.scalars(
                select(subscribers.c.id).where(subscribers.c.id.in_(wanted[start : start + _CHUNK]))
            )
        )
    return existing


def record_readers(
    connection: Connection, readers: Iterable[tuple[int, str, int]], when: dt.datetime
) -> None:
    """Remember (campaign, event, subscriber) in the caller's transaction; a reader seen
    before stays as first seen, so counting again (a retry, a second open) adds nothing.

    Only ids of subscribers who exist now are written: a signed key or an echoed id may
    name someone erased since, and their row would break the foreign key.
    """
    _insert_first(
        connection,
        engagement_by_subscriber,
        [
            {"campaign_id": campaign_id, "event": event, "subscriber_id": subscriber_id, "at": when}
            for campaign_id, event, subscriber_id in sorted(set(readers))
        ],
    )


def _insert_first(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows whose ``subscriber_id`` exists now; a row already there stays as
    it was (the first time)."""
    if not rows:
        return
    existing = existing_subscribers(connection, {row["subscriber_id"] for row in rows})
    insert_ignoring_duplicates(
        connection, table, [row for row in rows if row["subscriber_id"] in existing]
    )


def add_link_clicks(connection: Connection, clicks: Mapping[tuple[int, str], int]) -> None:
    """Add a provider's clicks per (campaign, URL), in the caller's transaction."""
    for (campaign_id, url), count in sorted(clicks.items()):
        table = provider_link_clicks
        connection.execute(
            insert_on_conflict(connection, table)
            .values(campaign_id=campaign_id, url_hash=url_hash(url), url=url, clicks=count)
            .on_conflict_do_update(
                index_elements=[table.c.campaign_id, table.c.url_hash],
                set_={"clicks": table.c.clicks + count},
            )
        )


def add_totals(connection: Connection, counts: Mapping[tuple[int, str], int]) -> None:
    """Add to each (campaign, ``open`` or ``click``)'s total in ``campaign_engagement``."""
    for (campaign_id, event), count in sorted(counts.items()):
        table = campaign_engagement
        connection.execute(
            insert_on_conflict(connection, table)
            .values(campaign_id=campaign_id, event=event, count=count)
            .on_conflict_do_update(
                index_elements=[table.c.campaign_id, table.c.event],
                set_={"count": table.c.count + count},
            )
        )


def record_link_clickers(
    connection: Connection, clicks: Iterable[tuple[int, int, int]], when: dt.datetime
) -> None:
    """Remember (campaign, first-party link, subscriber): who clicked which link, first
    click only; as :func:`record_readers`, only subscribers who exist now."""
    _insert_first(
        connection,
        link_clicks_by_subscriber,
        [
            {"campaign_id": campaign_id, "link": link, "subscriber_id": subscriber_id, "at": when}
            for campaign_id, link, subscriber_id in sorted(set(clicks))
        ],
    )


def add_first_party_clicks(connection: Connection, clicks: Mapping[tuple[int, int], int]) -> None:
    """Add to each (campaign, link number)'s clicks in ``campaign_links``."""
    for (campaign_id, link), count in sorted(clicks.items()):
        connection.execute(
            update(campaign_links)
            .where(campaign_links.c.campaign_id == campaign_id, campaign_links.c.link == link)
            .values(clicks=campaign_links.c.clicks + count)
        )
