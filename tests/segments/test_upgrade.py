"""Migration 13 on a database written before it: the subscribers' attributes and their
engagement are kept, segments over them pick the same readers, and what makes the
segments fast (the recent-engagement indexes; jsonb on PostgreSQL) is in place."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, column, func, insert, inspect, select, table, text
from sqlalchemy.dialects import postgresql

from newsletter.segments.language import parse
from newsletter.segments.sql import segment_condition
from newsletter.store import open_store_url
from newsletter.store.database import make_engine
from newsletter.store.engagement import engagement_by_subscriber
from newsletter.store.migrations import MIGRATIONS, current_version, upgrade
from newsletter.store.schema import campaigns, subscribers

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# The subscribers table as migration 12 left it (attributes: json on PostgreSQL).
_SUBSCRIBERS_12 = table(
    "subscribers",
    *(column(c.name, JSON if c.name == "attributes" else c.type) for c in subscribers.columns),
)


def test_a_database_from_before_keeps_its_attributes_and_segments_over_them(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    upgrade(engine, MIGRATIONS[:12])
    with engine.begin() as connection:  # as databases made before migration 13 are
        for name in ("ix_engagement_by_subscriber_event_at", "ix_link_clicks_by_subscriber_at"):
            connection.execute(text(f"DROP INDEX {name}"))
    when = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    people = [
        (1, "anna@example.org", {"country": "GB", "plan": "pro", "First Name": "Zoë"}),
        (2, "ben@example.org", {"country": "GB", "plan": "free"}),
        (3, "chloe@example.org", {"plan": "pro", "country": "FR"}),
        (4, "dev@example.org", {}),
    ]
    with engine.begin() as connection:
        for id_, email, attributes in people:
            added = connection.execute(
                insert(_SUBSCRIBERS_12)
                .values(
                    email=email,
                    email_key=email,
                    name="",
                    status="active",
                    attributes=attributes,
                    created_at=when,
                    updated_at=when,
                    source="import:mailchimp.csv",
                    opt_in_at=when,
                    link_key=f"key{id_}",
                    legacy_links=False,
                    was_active=True,
                )
                .returning(_SUBSCRIBERS_12.c.id)
            ).scalar_one()
            assert added == id_  # the database gives the ids, and its sequence moves on
        connection.execute(
            insert(campaigns).values(
                id=1,
                slug="first",
                issue_path="issues/first.md",
                subject="First",
                topics=[],
                provider="outbox",
                recipients=4,
                created_at=when,
            )
        )
        connection.execute(
            insert(engagement_by_subscriber),
            [
                {"campaign_id": 1, "event": "click", "subscriber_id": 1, "at": NOW},
                {"campaign_id": 1, "event": "click", "subscriber_id": 3, "at": NOW},
                {"campaign_id": 1, "event": "open", "subscriber_id": 2, "at": NOW},
            ],
        )

    store = open_store_url(database_url, ["research"])  # applies migration 13
    try:
        assert current_version(engine) == len(MIGRATIONS) >= 13
        assert [store.get(id_).attributes for id_, _, _ in people] == [  # type: ignore[union-attr]
            attributes for _, _, attributes in people
        ]

        def picked(expression: str) -> list[int]:
            where = segment_condition(parse(expression), now=NOW)
            with engine.connect() as connection:
                return list(
                    connection.scalars(
                        select(subscribers.c.id).where(where).order_by(subscribers.c.id)
                    )
                )

        assert picked('attributes.country == "GB" and attributes.plan == "pro"') == [1]
        assert picked('attributes["First Name"] == "Zoë"') == [1]
        assert picked('attributes.plan == "pro" and clicked within 90 days') == [1, 3]
        assert picked("opened within 30 days") == [2]
        assert picked('not attributes.country in ["GB", "FR"]') == [4]
        # A subscriber added after the upgrade is read and picked the same way.
        store.add("eve@example.org", source="cli", attributes={"country": "GB", "plan": "pro"})
        assert len(picked('attributes.country == "GB" and attributes.plan == "pro"')) == 2
        assert store.counts(segment_condition(parse('attributes.country == "GB"'), now=NOW))
    finally:
        store.close()

    inspector = inspect(engine)
    indexes = {index["name"] for index in inspector.get_indexes("engagement_by_subscriber")}
    assert "ix_engagement_by_subscriber_event_at" in indexes
    indexes = {index["name"] for index in inspector.get_indexes("link_clicks_by_subscriber")}
    assert "ix_link_clicks_by_subscriber_at" in indexes
    attributes_type = next(
        c["type"] for c in inspector.get_columns("subscribers") if c["name"] == "attributes"
    )
    assert isinstance(attributes_type, postgresql.JSONB) == (engine.dialect.name == "postgresql")
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(subscribers)) == 5
    engine.dispose()


def test_a_fresh_database_has_the_same_indexes_as_an_upgraded_one(database_url: str) -> None:
    open_store_url(database_url, ["research"]).close()
    engine = make_engine(database_url)
    inspector = inspect(engine)
    assert "ix_engagement_by_subscriber_event_at" in {
        index["name"] for index in inspector.get_indexes("engagement_by_subscriber")
    }
    assert "ix_link_clicks_by_subscriber_at" in {
        index["name"] for index in inspector.get_indexes("link_clicks_by_subscriber")
    }
    engine.dispose()
