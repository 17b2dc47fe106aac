"""What the report counts, read from the store in a few grouped queries.

The ledger is the big table (a row per recipient per campaign), so it is read once,
grouped by campaign and state; everything else is read per campaign only where the
rows are few (failed recipients, complaints, recent unsubscribes, clicks).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from newsletter.reports.figures import (
    UNIQUE_UNKNOWN,
    IssueReport,
    LinkCount,
    ProviderLinkCount,
    Report,
)
from newsletter.reports.list_counts import list_by_week, subscriber_sources
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.engagement import provider_link_clicks, readers_who
from newsletter.store.returns import BLOCKED
from newsletter.store.scheduling import campaign_links
from newsletter.store.schema import (
    LEDGER_STATES,
    campaign_engagement,
    soft_bounces,
    subscriber_events,
    subscribers,
)
from newsletter.store.schema import ledger as ledger_table

AFTER_DAYS = 7  # unsubscribes and complaints this long after a campaign count against it
TOP_LINKS = 5
_CHUNK = 500  # ids per IN (...) list


def build_report(
    store: Store,
    *,
    slugs: Sequence[str] | None = None,
    tracking: bool,
    per_subscriber: bool = False,
    tracked_by: Collection[str] = (),
) -> Report:
    """The report over every campaign, or over those of ``slugs``.

    ``tracking``: opens and clicks were counted (a provider's tracking or first-party).
    Unique opens and clicks are known where readers were told apart: campaigns sent
    through a provider in ``tracked_by`` (the providers whose tracking is on: every
    event names its subscriber), first-party ones with ``per_subscriber``, and any
    campaign that has per-reader rows.
    """
    engine = store.engine
    chosen = campaign_rows.list_campaigns(store)
    if slugs is not None:
        chosen = [campaign for campaign in chosen if campaign.slug in slugs]
    ids = [campaign.id for campaign in chosen]
    states = _state_counts(engine, ids)
    hard = _hard_bounces(engine, ids)
    blocked = _blocked(engine, ids)
    soft = _grouped(engine, soft_bounces.c.campaign_id, ids)
    through = _grouped(engine, subscribers.c.unsubscribe_campaign_id, ids, status="unsubscribed")
    after = _after_campaign(engine, chosen)
    engagement = _engagement(engine, ids)
    links = _links(engine, ids)
    unique = unique_readers(engine, ids)
    issues = []
    for campaign in chosen:
        counts = states.get(campaign.id, Counter())
        seen = engagement.get(campaign.id, {})
        campaign_links_ = links.get(campaign.id, [])
        counted = tracking or bool(seen) or bool(campaign_links_)
        first_party_clicks = sum(
            link.clicks for link in campaign_links_ if not isinstance(link, ProviderLinkCount)
        )
        readers = unique.get(campaign.id)
        readers_known = readers is not None or per_subscriber or campaign.provider in tracked_by
        readers = readers or Counter()
        issues.append(
            IssueReport(
                slug=campaign.slug,
                subject=campaign.subject,
                campaign_id=campaign.id,
                started=campaign.created_at,
                provider=campaign.provider,
                recipients=campaign.recipients,
                handed_over=campaign_rows.handed_over(counts),
                failed=counts["failed"],
                unknown=campaign_rows.outcome_unknown(counts),
                pending=counts["pending"],
                skipped=counts["skipped"],
                bounced_hard=hard.get(campaign.id, 0),
                bounced_soft=soft.get(campaign.id, 0),
                complained=after["complained"].get(campaign.id, 0),
                unsubscribed=through.get(campaign.id, 0),
                unsubscribed_within_7_days=after["unsubscribed"].get(campaign.id, 0),
                tracked=counted,
                opens=seen.get("open", 0) if counted else None,
                clicks=(seen.get("click", 0) + first_party_clicks) if counted else None,
                unique_opens=readers["open"] if counted and readers_known else None,
                unique_clicks=readers["click"] if counted and readers_known else None,
                unique_note=UNIQUE_UNKNOWN if counted and not readers_known else "",
                top_links=_top(campaign_links_),
                blocked=blocked.get(campaign.id, 0),
            )
        )
    return Report(issues=issues, weeks=list_by_week(engine), sources=subscriber_sources(engine))


def _top(links: Iterable[LinkCount]) -> list[LinkCount]:
    """The most clicked links, a URL counted by both first-party tracking and a provider
    once, with both counts."""
    clicks: Counter[str] = Counter()
    for link in links:
        clicks[link.url] += link.clicks
    ranked = sorted(clicks.items(), key=lambda item: -item[1])  # stable: issue order
    return [LinkCount(url, count) for url, count in ranked[:TOP_LINKS]]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _state_counts(engine: Engine, ids: Sequence[int]) -> dict[int, Counter[str]]:
    """One pass over the ledger: rows per campaign and state."""
    found: dict[int, Counter[str]] = defaultdict(Counter)
    if not ids:
        return found
    query = select(ledger_table.c.campaign_id, ledger_table.c.state, func.count()).group_by(
        ledger_table.c.campaign_id, ledger_table.c.state
    )
    with engine.connect() as connection:
        for campaign_id, state, count in connection.execute(query):
            if state in LEDGER_STATES:
                found[campaign_id][state] = count
    return found


def _hard_bounces(engine: Engine, ids: Sequence[int]) -> dict[int, int]:
    """Failed recipients who are bounced (or complained since) now: the address is gone."""
    found: dict[int, int] = {}
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            rows = connection.execute(
                select(ledger_table.c.campaign_id, func.count())
                .join(subscribers, subscribers.c.id == ledger_table.c.subscriber_id)
                .where(
                    ledger_table.c.campaign_id.in_(chunk),
                    ledger_table.c.state == "failed",
                    subscribers.c.status.in_(("bounced", "complained")),
                )
                .group_by(ledger_table.c.campaign_id)
            )
            found.update({campaign_id: count for campaign_id, count in rows})
    return found


def _blocked(engine: Engine, ids: Sequence[int]) -> dict[int, int]:
    """Failed recipients whose copy a receiving server refused as a policy block."""
    found: dict[int, int] = {}
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            rows = connection.execute(
                select(ledger_table.c.campaign_id, func.count())
                .where(
                    ledger_table.c.campaign_id.in_(chunk),
                    ledger_table.c.state == "failed",
                    ledger_table.c.error.startswith(BLOCKED, autoescape=True),
                )
                .group_by(ledger_table.c.campaign_id)
            )
            found.update({campaign_id: count for campaign_id, count in rows})
    return found


def _grouped(
    engine: Engine, column: Any, ids: Sequence[int], *, status: str | None = None
) -> dict[int, int]:
    found: dict[int, int] = {}
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            query = select(column, func.count()).where(column.in_(chunk)).group_by(column)
            if status is not None:
                query = query.where(subscribers.c.status == status)
            found.update({key: count for key, count in connection.execute(query)})
    return found


def _after_campaign(
    engine: Engine, chosen: Sequence[campaign_rows.Campaign]
) -> dict[str, dict[int, int]]:
    """Recipients of each campaign who unsubscribed (any way) or complained within
    ``AFTER_DAYS`` of its start. The events are few next to the ledger: read once, then
    checked against each campaign's recipients by primary key."""
    with engine.connect() as connection:
        unsubscribed = connection.execute(
            select(subscribers.c.id, subscribers.c.unsubscribed_at).where(
                subscribers.c.status == "unsubscribed", subscribers.c.unsubscribed_at.is_not(None)
            )
        ).all()
        complained = connection.execute(
            select(subscriber_events.c.subscriber_id, subscriber_events.c.at).where(
                subscriber_events.c.event == "complained"
            )
        ).all()
        window = dt.timedelta(days=AFTER_DAYS)
        result: dict[str, dict[int, int]] = {"unsubscribed": {}, "complained": {}}
        for kind, events in (("unsubscribed", unsubscribed), ("complained", complained)):
            ordered = sorted((at, who) for who, at in events)
            times = [at for at, _ in ordered]
            for campaign in chosen:
                start, end = campaign.created_at, campaign.created_at + window
                window_rows = ordered[bisect_left(times, start) : bisect_left(times, end)]
                candidates = sorted({who for _, who in window_rows})
                total = 0
                for chunk in _chunks(candidates):
                    total += (
                        connection.scalar(
                            select(func.count())
                            .select_from(ledger_table)
                            .where(
                                ledger_table.c.campaign_id == campaign.id,
                                ledger_table.c.subscriber_id.in_(chunk),
                                ledger_table.c.state == "sent",
                            )
                        )
                        or 0
                    )
                if total:
                    result[kind][campaign.id] = total
    return result


def _engagement(engine: Engine, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    found: dict[int, dict[str, int]] = defaultdict(dict)
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            rows = connection.execute(
                select(
                    campaign_engagement.c.campaign_id,
                    campaign_engagement.c.event,
                    campaign_engagement.c.count,
                ).where(campaign_engagement.c.campaign_id.in_(chunk))
            )
            for campaign_id, event, count in rows:
                found[campaign_id][event] = count
    return found


def _links(engine: Engine, ids: Sequence[int]) -> dict[int, list[LinkCount]]:
    found: dict[int, list[LinkCount]] = defaultdict(list)
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            rows = connection.execute(
                select(campaign_links.c.campaign_id, campaign_links.c.url, campaign_links.c.clicks)
                .where(campaign_links.c.campaign_id.in_(chunk))
                .order_by(campaign_links.c.campaign_id, campaign_links.c.link)
            )
            for campaign_id, url, clicks in rows:
                found[campaign_id].append(LinkCount(url, clicks))
            rows = connection.execute(
                select(
                    provider_link_clicks.c.campaign_id,
                    provider_link_clicks.c.url,
                    provider_link_clicks.c.clicks,
                ).where(provider_link_clicks.c.campaign_id.in_(chunk))
            )
            for campaign_id, url, clicks in rows:
                found[campaign_id].append(ProviderLinkCount(url, clicks))
    return found


def unique_readers(engine: Engine, ids: Sequence[int]) -> dict[int, Counter[str]]:
    """Per campaign, the readers who opened and who clicked (each reader once, a click
    in either source or both once), for the campaigns that have any per-reader row."""
    found: dict[int, Counter[str]] = defaultdict(Counter)
    with engine.connect() as connection:
        for chunk in _chunks(ids):
            for event in ("click", "open"):
                readers = readers_who(event, campaign_ids=chunk, per_campaign=True).subquery()
                for campaign_id, count in connection.execute(
                    select(readers.c.campaign_id, func.count()).group_by(readers.c.campaign_id)
                ):
                    found[campaign_id][event] = count
    return dict(found)
