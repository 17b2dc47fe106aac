"""A varied set of readers, written into a store with plain inserts, and a reference
evaluation of a segment's tree over the same readers in Python (written from
docs/segments.md, not from the SQL compiler)."""

from __future__ import annotations

import datetime as dt
import operator
import random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select

from newsletter.segments.language import And, Condition, Node, Not, Or
from newsletter.store import Store
from newsletter.store.engagement import engagement_by_subscriber
from newsletter.store.scheduling import link_clicks_by_subscriber
from newsletter.store.schema import (
    campaigns,
    ledger,
    soft_bounces,
    subscriber_topics,
    subscribers,
)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
TOPICS = ("research", "stories", "events")
STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
SOURCES = ("cli", "web", "import:mailchimp.csv", "import:Substack.csv")
CAMPAIGNS = 5


@dataclass
class Reader:
    email: str
    status: str
    source: str
    attributes: dict[str, str]
    topics: set[str]
    opt_in_at: dt.datetime
    confirmed_at: dt.datetime | None
    clicks: list[dt.datetime] = field(default_factory=list)  # SendGrid's, per reader
    own_clicks: list[dt.datetime] = field(default_factory=list)  # first-party
    opens: list[dt.datetime] = field(default_factory=list)
    sent: int = 0
    failed: int = 0
    soft_bounces: int = 0
    id: int = 0


def _moment(rng: random.Random, most_days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=rng.randrange(most_days), minutes=rng.randrange(1, 1400))


def make_readers(count: int = 80, seed: int = 27) -> list[Reader]:
    rng = random.Random(seed)
    readers = []
    for number in range(count):
        attributes = {}
        if rng.random() < 0.8:
            attributes["country"] = rng.choice(["GB", "FR", "gb", "DE", ""])
        if rng.random() < 0.6:
            attributes["plan"] = rng.choice(["pro", "free"])
        if rng.random() < 0.4:
            attributes["First Name"] = rng.choice(["Ann", "Dan", "Zoë", "BEN"])
        opt_in = _moment(rng, 800)
        confirmed = opt_in + dt.timedelta(hours=5) if rng.random() < 0.6 else None
        reader = Reader(
            email=f"Reader{number}@{rng.choice(['example.org', 'example.com'])}",
            status=rng.choice(STATUSES),
            source=rng.choice(SOURCES),
            attributes=attributes,
            topics={topic for topic in TOPICS if rng.random() < 0.4},
            opt_in_at=opt_in,
            confirmed_at=confirmed,
        )
        reader.clicks = [_moment(rng, 200) for _ in range(rng.choice([0, 0, 1, 2]))]
        reader.own_clicks = [_moment(rng, 200) for _ in range(rng.choice([0, 0, 1]))]
        reader.opens = [_moment(rng, 100) for _ in range(rng.choice([0, 1, 2]))]
        reader.sent = rng.randrange(CAMPAIGNS + 1)
        reader.failed = rng.randrange(CAMPAIGNS + 1 - reader.sent)
        reader.soft_bounces = rng.choice([0, 0, 1, 2])
        readers.append(reader)
    return readers


def write_readers(store: Store, readers: list[Reader]) -> None:
    """Plain inserts (no import, no status rules): the rows exactly as described."""
    with store.engine.begin() as connection:
        campaign_ids = [
            connection.scalar(
                insert(campaigns)
                .values(
                    slug=f"issue-{number}",
                    issue_path=f"issues/{number}.md",
                    subject="S",
                    topics=[],
                    provider="outbox",
                    recipients=0,
                    created_at=NOW,
                )
                .returning(campaigns.c.id)
            )
            for number in range(CAMPAIGNS)
        ]
        for reader in readers:
            reader.id = connection.scalar(
                insert(subscribers)
                .values(
                    email=reader.email,
                    email_key=reader.email.lower(),
                    name="",
                    status=reader.status,
                    attributes=reader.attributes,
                    created_at=reader.opt_in_at,
                    updated_at=reader.opt_in_at,
                    source=reader.source,
                    opt_in_at=reader.opt_in_at,
                    confirmed_at=reader.confirmed_at,
                )
                .returning(subscribers.c.id)
            )
            rows: list[dict[str, Any]] = [
                {"subscriber_id": reader.id, "topic": topic} for topic in sorted(reader.topics)
            ]
            if rows:
                connection.execute(insert(subscriber_topics), rows)
            events = [("click", at) for at in reader.clicks] + [("open", at) for at in reader.opens]
            if events:
                connection.execute(
                    insert(engagement_by_subscriber),
                    [
                        {
                            "campaign_id": campaign_ids[number],
                            "event": event,
                            "subscriber_id": reader.id,
                            "at": at,
                        }
                        for number, (event, at) in enumerate(events)
                    ],
                )
            if reader.own_clicks:
                connection.execute(
                    insert(link_clicks_by_subscriber),
                    [
                        {"campaign_id": campaign_ids[0], "link": number, "subscriber_id": reader.id}
                        | {"at": at}
                        for number, at in enumerate(reader.own_clicks)
                    ],
                )
            states = ["sent"] * reader.sent + ["failed"] * reader.failed
            if states:
                connection.execute(
                    insert(ledger),
                    [
                        {
                            "campaign_id": campaign_ids[number],
                            "subscriber_id": reader.id,
                            "state": state,
                            "attempts": 1,
                            "updated_at": NOW,
                        }
                        for number, state in enumerate(states)
                    ],
                )
            if reader.soft_bounces:
                connection.execute(
                    insert(soft_bounces),
                    [
                        {"subscriber_id": reader.id, "campaign_id": campaign_ids[number], "at": NOW}
                        for number in range(reader.soft_bounces)
                    ],
                )


def selected_ids(store: Store, condition: Any) -> list[int]:
    with store.engine.connect() as connection:
        return list(
            connection.scalars(select(subscribers.c.id).where(condition).order_by(subscribers.c.id))
        )


# -- the reference ---------------------------------------------------------------------

COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def matches(node: Node, reader: Reader, now: dt.datetime = NOW) -> bool:
    if isinstance(node, Not):
        return not matches(node.item, reader, now)
    if isinstance(node, And):
        return all(matches(item, reader, now) for item in node.items)
    if isinstance(node, Or):
        return any(matches(item, reader, now) for item in node.items)
    return _condition(node, reader, now)


def _condition(node: Condition, reader: Reader, now: dt.datetime) -> bool:
    field, op, value = node.field, node.op, node.value
    if field == "topics":
        wanted = set(value) if isinstance(value, tuple) else {value}
        return bool(reader.topics & wanted)
    if field in ("status", "source", "email", "attributes"):
        text = {
            "status": reader.status,
            "source": reader.source,
            "email": reader.email.lower(),
            "attributes": reader.attributes.get(node.key),
        }[field]
        if field == "email":
            value = tuple(v.lower() for v in value) if isinstance(value, tuple) else value.lower()
        if text is None:  # a missing attribute is equal to nothing
            return op == "!="
        if op == "in":
            return text in value  # type: ignore[operator]
        if op == "contains":
            return str(value) in text
        return bool(COMPARE[op](text, value))
    if field in ("subscribed", "confirmed"):
        moment = reader.opt_in_at if field == "subscribed" else reader.confirmed_at
        if op == "within":
            return moment is not None and moment >= now - dt.timedelta(days=int(value))  # type: ignore[arg-type]
        if moment is None:
            return op == "!="
        return bool(COMPARE[op](moment.date(), value))
    if field in ("received", "bounced_soft"):
        number = reader.sent if field == "received" else reader.soft_bounces
        return bool(COMPARE[op](number, value))
    since = now - dt.timedelta(days=int(value))  # type: ignore[arg-type]
    moments = reader.clicks + reader.own_clicks if field == "clicked" else reader.opens
    return any(at >= since for at in moments)
