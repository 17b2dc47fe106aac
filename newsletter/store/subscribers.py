"""The subscriber store: who may be mailed, about what, and on what consent.

Every change is one short transaction, written so that concurrent web workers, the
CLI and the sender can share the database: status changes are conditional
``UPDATE``s (``... WHERE status = 'pending'``), so two processes confirming or
unsubscribing the same person at once do it exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from newsletter.errors import StoreError
from newsletter.models import SUBSCRIBER_STATUSES, SUPPRESSED_STATUSES, Subscriber
from newsletter.safe_text import without_controls
from newsletter.store.addresses import address_hash, address_key, normalize_address
from newsletter.store.bulk import BulkOutcome, Candidate, merge_chunk
from newsletter.store.schema import (
    campaigns,
    ledger,
    new_link_key,
    subscriber_events,
    subscriber_topics,
    subscribers,
    suppressions,
)

Outcome = Literal["added", "updated", "unchanged"]
T = TypeVar("T")
PAGE_SIZE = 1000  # rows per keyset page when streaming
# What a Subscriber needs: streaming reads skip the consent columns' parsing.
_SUBSCRIBER_COLUMNS = (
    subscribers.c.id,
    subscribers.c.email,
    subscribers.c.name,
    subscribers.c.status,
    subscribers.c.attributes,
    subscribers.c.link_key,
)


def subscriber_condition(
    *, status: str | None = None, topics: Sequence[str] | None = None
) -> ColumnElement[bool]:
    """Subscribers of ``status`` (any, if None) with any of ``topics`` (any, if None), as
    SQL: the one definition of "who is a recipient" (``status="active"``), shared by
    :meth:`Store.recipients` and the campaign snapshot in :mod:`newsletter.send.ledger`.
    ``topics`` are taken as given (:meth:`Store.check_topics` validates them); an empty
    list matches nobody."""
    condition: ColumnElement[bool] = true()
    if status is not None:
        condition = subscribers.c.status == status
    if topics is not None:
        condition = condition & exists().where(
            subscriber_topics.c.subscriber_id == subscribers.c.id,
            subscriber_topics.c.topic.in_(list(topics)),
        )
    return condition


@dataclass(frozen=True)
class Added:
    subscriber: Subscriber
    outcome: Outcome


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Store:
    """Subscribers in one database; ``topics`` are the ids ``newsletter.yaml`` defines."""

    def __init__(self, engine: Engine, topics: Sequence[str]) -> None:
        self.engine = engine
        self.topics = tuple(topics)
        # Topics always come out in the order newsletter.yaml lists them.
        self._topic_rank = {topic: rank for rank, topic in enumerate(self.topics)}
        self._orders: dict[tuple[str, ...], tuple[str, ...]] = {}

    def close(self) -> None:
        self.engine.dispose()

    # -- adding and finding -------------------------------------------------------

    def add(
        self,
        email: str,
        *,
        name: str = "",
        topics: Sequence[str] = (),
        status: str = "active",
        source: str = "cli",
        ip: str | None = None,
        attributes: Mapping[str, str] | None = None,
        own_request: bool = False,
    ) -> Subscriber:
        """Add a subscriber, or merge into the pending/active one with that address.

        Suppressed and erased addresses raise :class:`StoreError`: consent withdrawn
        is never given back by an add. The one exception is ``own_request`` (the
        person typed the address into the signup form): an erased address may start
        over as ``pending``, and only its confirmation (:meth:`confirm`) lifts the
        erasure, so the person's new consent is proven by the link mailed to them.
        """
        return self.add_or_merge(
            email,
            name=name,
            topics=topics,
            status=status,
            source=source,
            ip=ip,
            attributes=attributes,
            own_request=own_request,
        ).subscriber

    def add_or_merge(
        self,
        email: str,
        *,
        name: str = "",
        topics: Sequence[str] = (),
        status: str = "active",
        source: str = "cli",
        ip: str | None = None,
        attributes: Mapping[str, str] | None = None,
        own_request: bool = False,
    ) -> Added:
        """Like :meth:`add`, also saying whether it added, updated or left it unchanged."""
        if status not in ("active", "pending"):
            raise StoreError(f"a new subscriber is 'active' or 'pending', not {status!r}")
        if own_request and status != "pending":
            raise StoreError("a signup of one's own is 'pending' until it is confirmed")
        normalized = normalize_address(email)
        wanted_topics = self.check_topics(topics)
        name = without_controls(name)
        attributes = dict(attributes or {})
        return self._write_retrying(
            lambda connection: self._add_or_merge(
                connection,
                normalized,
                name,
                wanted_topics,
                status,
                source,
                ip,
                attributes,
                own_request,
            )
        )

    def _add_or_merge(
        self,
        connection: Connection,
        email: str,
        name: str,
        topics: tuple[str, ...],
        status: str,
        source: str,
        ip: str | None,
        attributes: dict[str, str],
        own_request: bool,
    ) -> Added:
        key = address_key(email)
        if not own_request and _hash_suppressed(connection, address_hash(email)):
            raise StoreError(
                f"{email} was erased at the person's request and stays suppressed; "
                "it cannot be added again"
            )
        row = connection.execute(
            select(subscribers).where(subscribers.c.email_key == key)
        ).one_or_none()
        if row is None:
            when = now()
            link_key = new_link_key()
            subscriber_id = connection.scalar(
                insert(subscribers)
                .values(
                    email=email,
                    email_key=key,
                    name=name,
                    status=status,
                    attributes=attributes,
                    created_at=when,
                    updated_at=when,
                    source=source,
                    opt_in_at=when,
                    opt_in_ip=ip,
                    link_key=link_key,
                    was_active=status == "active",
                )
                .returning(subscribers.c.id)
            )
            assert subscriber_id is not None
            _insert_topics(connection, subscriber_id, topics)
            subscriber = Subscriber(
                subscriber_id, email, name, status, topics, attributes, link_key
            )
            return Added(subscriber, "added")

        if row.status in SUPPRESSED_STATUSES:
            raise StoreError(
                f"{row.email} is {row.status}; a suppressed address is never reactivated "
                "by an add or import (the person can resubscribe from a link in any issue)"
            )
        current_topics = _topics_of(connection, [row.id]).get(row.id, ())
        new_topics = tuple(topic for topic in topics if topic not in current_topics)
        merged_attributes = {**row.attributes, **attributes}
        changes: dict[str, Any] = {}
        if name and name != row.name:
            changes["name"] = name
        if merged_attributes != row.attributes:
            changes["attributes"] = merged_attributes
        if not changes and not new_topics:
            return Added(self._subscriber(row, current_topics), "unchanged")
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == row.id)
            .values(**changes, updated_at=now())
        )
        _insert_topics(connection, row.id, new_topics)
        _log(
            connection,
            row.id,
            "updated",
            source=source,
            ip=ip,
            detail={"fields": sorted(changes), "topics_added": list(new_topics)},
        )
        merged = connection.execute(select(subscribers).where(subscribers.c.id == row.id)).one()
        return Added(self._subscriber(merged, (*current_topics, *new_topics)), "updated")

    def get(self, subscriber_id: int) -> Subscriber | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id)
            ).one_or_none()
            if row is None:
                return None
            return self._subscriber(row, _topics_of(connection, [row.id]).get(row.id, ()))

    def holder(self, subscriber_id: int, link_key: str | None) -> Subscriber | None:
        """The subscriber a signed link was issued to, or None: erased, or a link issued
        to someone else. ``link_key`` None is a link from before link keys, which only
        the rows that existed then accept (see :mod:`newsletter.store.link_keys`)."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id, link_matches(link_key))
            ).one_or_none()
            if row is None:
                return None
            return self._subscriber(row, _topics_of(connection, [row.id]).get(row.id, ()))

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address, whatever its case; None if there is none."""
        key = _lookup_key(email)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.email_key == key)
            ).one_or_none()
            if row is None:
                return None
            return self._subscriber(row, _topics_of(connection, [row.id]).get(row.id, ()))

    # -- status changes -----------------------------------------------------------

    def confirm(self, subscriber_id: int, *, ip: str | None) -> bool:
        """Double opt-in: pending becomes active; False if it was not pending.

        A confirmed address is no longer erased: the person has given their consent
        again, so its hash leaves the suppression list.
        """
        when = now()
        with self._writing() as connection:
            changed = _transition(
                connection,
                subscriber_id,
                subscribers.c.status == "pending",
                status="active",
                confirmed_at=when,
                confirmed_ip=ip,
                updated_at=when,
                was_active=True,
            )
            if changed:
                _log(connection, subscriber_id, "confirmed", source="web", ip=ip, at=when)
                email = connection.scalar(
                    select(subscribers.c.email).where(subscribers.c.id == subscriber_id)
                )
                connection.execute(
                    delete(suppressions).where(
                        suppressions.c.email_hash == address_hash(str(email))
                    )
                )
        return changed

    def unsubscribe(
        self,
        subscriber_id: int,
        *,
        source: str,
        reason: str = "",
        campaign_id: int | None = None,
    ) -> bool:
        """Stop mailing a pending or active subscriber; False if already suppressed."""
        when = now()
        with self._writing() as connection:
            changed = _transition(
                connection,
                subscriber_id,
                subscribers.c.status.in_(("pending", "active")),
                status="unsubscribed",
                unsubscribed_at=when,
                unsubscribe_source=source,
                unsubscribe_reason=reason,
                unsubscribe_campaign_id=campaign_id,
                updated_at=when,
            )
            if changed:
                _log(
                    connection,
                    subscriber_id,
                    "unsubscribed",
                    source=source,
                    at=when,
                    detail=_without_none({"reason": reason or None, "campaign_id": campaign_id}),
                )
        return changed

    def unsubscribe_many(
        self, requests: Sequence[tuple[int, int | None, str | None]], *, source: str
    ) -> set[int]:
        """:meth:`unsubscribe` for several ``(subscriber_id, campaign_id, link_key)`` at
        once, in one transaction and a few statements; returns the ids that changed.
        Each acts only if its link key is the subscriber's (see :meth:`holder`).

        The web app's one-click endpoint gathers concurrent requests into one call
        (group commit): one write transaction for many is what lets SQLite keep up.
        """
        wanted: dict[int, int | None] = {}
        keys: dict[int, str | None] = {}
        for subscriber_id, campaign_id, link_key in requests:
            wanted.setdefault(subscriber_id, campaign_id)  # a double click: the first counts
            keys.setdefault(subscriber_id, link_key)
        if not wanted:
            return set()
        when = now()
        with self._writing() as connection:
            changing = {
                id_
                for id_, link_key, legacy_links in connection.execute(
                    select(
                        subscribers.c.id, subscribers.c.link_key, subscribers.c.legacy_links
                    ).where(
                        subscribers.c.id.in_(list(wanted)),
                        subscribers.c.status.in_(("pending", "active")),
                    )
                )
                if (legacy_links if keys[id_] is None else keys[id_] == link_key)
            }
            if changing:
                rows = [{"row_id": id_, "campaign": wanted[id_]} for id_ in sorted(changing)]
                connection.execute(
                    update(subscribers)
                    .where(subscribers.c.id == bindparam("row_id"))
                    .values(
                        status="unsubscribed",
                        unsubscribed_at=when,
                        unsubscribe_source=source,
                        unsubscribe_reason="",
                        unsubscribe_campaign_id=bindparam("campaign"),
                        updated_at=when,
                    ),
                    rows,
                )
                connection.execute(
                    insert(subscriber_events),
                    [
                        {
                            "subscriber_id": row["row_id"],
                            "at": when,
                            "event": "unsubscribed",
                            "source": source,
                            "ip": None,
                            "detail": _without_none({"campaign_id": row["campaign"]}),
                        }
                        for row in rows
                    ],
                )
        return changing

    def resubscribe(self, subscriber_id: int, *, source: str, ip: str | None = None) -> bool:
        """An unsubscribed person opts in again, by their own explicit action.

        Only the web app calls this, on a POST from the person's own signed link;
        it counts as a fresh, confirmed opt-in. Bounced and complained addresses stay,
        and so does anyone whose consent was never proven (a signup that was never
        confirmed): only confirming makes a pending signup a subscriber, so the web
        app starts the signup again for them (:meth:`restart_signup`).
        """
        when = now()
        with self._writing() as connection:
            changed = _transition(
                connection,
                subscriber_id,
                (subscribers.c.status == "unsubscribed") & subscribers.c.was_active,
                status="active",
                opt_in_at=when,
                opt_in_ip=ip,
                confirmed_at=when,
                confirmed_ip=ip,
                unsubscribed_at=None,
                unsubscribe_source=None,
                unsubscribe_reason=None,
                unsubscribe_campaign_id=None,
                updated_at=when,
            )
            if changed:
                _log(connection, subscriber_id, "resubscribed", source=source, ip=ip, at=when)
        return changed

    def restart_signup(self, subscriber_id: int, *, source: str, ip: str | None = None) -> bool:
        """Unsubscribed, never confirmed, now asking to subscribe: pending again, waiting
        for a confirmation like any signup. False if that is not the subscriber's case."""
        when = now()
        with self._writing() as connection:
            changed = _transition(
                connection,
                subscriber_id,
                (subscribers.c.status == "unsubscribed") & ~subscribers.c.was_active,
                status="pending",
                opt_in_at=when,
                opt_in_ip=ip,
                unsubscribed_at=None,
                unsubscribe_source=None,
                unsubscribe_reason=None,
                unsubscribe_campaign_id=None,
                updated_at=when,
            )
            if changed:
                _log(connection, subscriber_id, "signup-restarted", source=source, ip=ip, at=when)
        return changed

    def mark(self, subscriber_id: int, status: str, *, reason: str = "") -> bool:
        """Record a hard bounce or a spam complaint; a complaint is never downgraded."""
        if status not in ("bounced", "complained"):
            raise StoreError(f"mark() takes 'bounced' or 'complained', not {status!r}")
        # Already in this state, or in the stronger one: nothing to record.
        keep = ("bounced", "complained") if status == "bounced" else ("complained",)
        when = now()
        with self._writing() as connection:
            changed = _transition(
                connection,
                subscriber_id,
                subscribers.c.status.not_in(keep),
                status=status,
                updated_at=when,
            )
            if changed:
                _log(
                    connection,
                    subscriber_id,
                    status,
                    source="provider",
                    at=when,
                    detail=_without_none({"reason": reason or None}),
                )
        return changed

    def update_preferences(
        self,
        subscriber_id: int,
        *,
        name: str | None = None,
        topics: Sequence[str] | None = None,
    ) -> Subscriber:
        """Change the name and/or replace the topics; a status is never changed here."""
        wanted_topics = None if topics is None else self.check_topics(topics)
        with self._writing() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id)
            ).one_or_none()
            if row is None:
                raise StoreError(f"no subscriber with id {subscriber_id}")
            current = _topics_of(connection, [subscriber_id]).get(subscriber_id, ())
            detail: dict[str, Any] = {}
            name = None if name is None else without_controls(name)
            if name is not None and name != row.name:
                connection.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(name=name, updated_at=now())
                )
                detail["name_changed"] = True
            if wanted_topics is not None and set(wanted_topics) != set(current):
                connection.execute(
                    delete(subscriber_topics).where(
                        subscriber_topics.c.subscriber_id == subscriber_id
                    )
                )
                _insert_topics(connection, subscriber_id, wanted_topics)
                connection.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(updated_at=now())
                )
                detail["topics"] = list(wanted_topics)
                current = wanted_topics
            if detail:
                _log(connection, subscriber_id, "preferences", source="web", detail=detail)
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id)
            ).one()
            return self._subscriber(row, current)

    # -- erasure and suppression --------------------------------------------------

    def forget(self, email: str) -> bool:
        """Erase a person (GDPR art. 17): delete everything, keep only a hash.

        The SHA-256 of the normalised address goes on the suppression list, so the
        address is never mailed, added or imported again, unless the person signs up
        again through the form and confirms (see :meth:`add`). True if a subscriber
        was deleted; the hash is recorded either way.
        """
        digest = address_hash(email)
        key = _lookup_key(email)
        with self._writing() as connection:
            deleted = connection.execute(
                delete(subscribers).where(subscribers.c.email_key == key)
            ).rowcount
            insert_ignoring_duplicates(
                connection,
                suppressions,
                [{"email_hash": digest, "reason": "erased", "created_at": now()}],
            )
        return bool(deleted)

    def is_suppressed(self, email: str) -> bool:
        """True if the address must never be mailed: erased, unsubscribed, bounced..."""
        key = _lookup_key(email)
        with self.engine.connect() as connection:
            status = connection.scalar(
                select(subscribers.c.status).where(subscribers.c.email_key == key)
            )
            if status in SUPPRESSED_STATUSES:
                return True
            return _hash_suppressed(connection, address_hash(email))

    def is_erased(self, email: str) -> bool:
        """True if the person asked to be forgotten (their address's hash is kept)."""
        with self.engine.connect() as connection:
            return _hash_suppressed(connection, address_hash(email))

    def expire_pending(self, *, source: str, older_than: dt.datetime) -> int:
        """Delete pending subscribers from ``source`` who signed up before ``older_than``
        and never confirmed, with their topics and events; how many were deleted.

        Their address is not put on the suppression list: they never consented, so
        nothing of them is kept (an erased address's hash stays as it was)."""
        with self._writing() as connection:
            return connection.execute(
                delete(subscribers).where(
                    subscribers.c.status == "pending",
                    subscribers.c.source == source,
                    subscribers.c.opt_in_at < older_than,
                )
            ).rowcount

    # -- reading many -------------------------------------------------------------

    def recipients(self, topics: Sequence[str] | None) -> Iterator[Subscriber]:
        """Active subscribers in id order: all of them, or those with any of ``topics``.

        Streamed in keyset pages, each read in its own short transaction, so memory
        stays flat and no lock is held while the caller works on a page.
        """
        for row, row_topics in self._pages(self._recipient_filter(topics), _SUBSCRIBER_COLUMNS):
            yield self._subscriber(row, row_topics)

    def count_recipients(self, topics: Sequence[str] | None) -> int:
        with self.engine.connect() as connection:
            count = connection.scalar(
                select(func.count()).select_from(subscribers).where(self._recipient_filter(topics))
            )
        return count or 0

    def subscribers(
        self, *, status: str | None = None, topics: Sequence[str] | None = None
    ) -> Iterator[Subscriber]:
        """Every subscriber, optionally of one status and/or any of some topics; streamed."""
        for row, row_topics in self._pages(self._filter(status, topics), _SUBSCRIBER_COLUMNS):
            yield self._subscriber(row, row_topics)

    def records(
        self, *, status: str | None = None, topics: Sequence[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Like :meth:`subscribers`, with the consent record: what an export writes."""
        for row, row_topics in self._pages(self._filter(status, topics), subscribers.c):
            yield _record(row, self._ordered(row_topics))

    def counts(self) -> dict[str, dict[str, int]]:
        """Subscribers by status, and active subscribers by topic."""
        with self.engine.connect() as connection:
            by_status: dict[str, int] = {
                status: count
                for status, count in connection.execute(
                    select(subscribers.c.status, func.count()).group_by(subscribers.c.status)
                )
            }
            by_topic: dict[str, int] = {
                topic: count
                for topic, count in connection.execute(
                    select(subscriber_topics.c.topic, func.count())
                    .join(subscribers, subscribers.c.id == subscriber_topics.c.subscriber_id)
                    .where(subscribers.c.status == "active")
                    .group_by(subscriber_topics.c.topic)
                )
            }
        return {
            "status": {status: by_status.get(status, 0) for status in SUBSCRIBER_STATUSES},
            "topics": {topic: by_topic.get(topic, 0) for topic in self.topics}
            | {topic: count for topic, count in by_topic.items() if topic not in self.topics},
        }

    def describe(self, email: str) -> dict[str, Any]:
        """Everything stored about one person: the answer to a data access request."""
        key = _lookup_key(email)
        with self.engine.connect() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.email_key == key)
            ).one_or_none()
            erased = _hash_suppressed(connection, address_hash(email))
            if row is None:
                if erased:
                    return {
                        "email": email.strip(),
                        "erased": True,
                        "note": "erased on request; only a SHA-256 hash of the address "
                        "is kept, so that it is never mailed again",
                    }
                raise StoreError(f"no subscriber with address {email.strip()}")
            events = connection.execute(
                select(subscriber_events)
                .where(subscriber_events.c.subscriber_id == row.id)
                .order_by(subscriber_events.c.id)
            ).all()
            row_topics = _topics_of(connection, [row.id]).get(row.id, ())
            # Which issues were mailed to them: part of what is stored about a person.
            mailings = connection.execute(
                select(campaigns.c.slug, campaigns.c.subject, ledger.c.state, ledger.c.sent_at)
                .join(campaigns, campaigns.c.id == ledger.c.campaign_id)
                .where(ledger.c.subscriber_id == row.id)
                .order_by(campaigns.c.id)
            ).all()
        record = _record(row, self._ordered(row_topics))
        record["events"] = [
            {
                "at": _iso(event.at),
                "event": event.event,
                "source": event.source,
                "ip": event.ip,
                "detail": event.detail,
            }
            for event in events
        ]
        record["mailings"] = [
            {
                "issue": mailing.slug,
                "subject": mailing.subject,
                "state": mailing.state,
                "sent_at": _iso(mailing.sent_at),
            }
            for mailing in mailings
        ]
        return {"id": row.id, **record, "erased": False}

    # -- many at once -------------------------------------------------------------

    def merge_many(
        self, candidates: Sequence[Candidate], *, dry_run: bool = False
    ) -> list[BulkOutcome]:
        """Add or merge a chunk of validated rows in one transaction (rolled back if dry_run).

        Addresses must be unique within the chunk. The outcome of each row, in order.
        """
        unknown = {topic for c in candidates for topic in c.topics} - self._topic_rank.keys()
        if unknown:
            raise StoreError(unknown_topic_message(min(unknown), self.topics))
        return self._write_retrying(
            lambda connection: merge_chunk(connection, candidates, now()), rollback=dry_run
        )

    # -- helpers ------------------------------------------------------------------

    def check_topics(self, topics: Sequence[str]) -> tuple[str, ...]:
        """Topic ids, lowercased, de-duplicated and in config order; unknown ones raise."""
        checked: set[str] = set()
        for topic in topics:
            topic_id = topic.strip().lower()
            if topic_id not in self._topic_rank:
                raise StoreError(unknown_topic_message(topic, self.topics))
            checked.add(topic_id)
        return self._ordered(checked)

    def _ordered(self, topics: Iterable[str]) -> tuple[str, ...]:
        topics = tuple(topics)
        ordered = self._orders.get(topics)
        if ordered is None:  # a few distinct combinations, met once per page at most
            # A topic since removed from newsletter.yaml sorts last rather than vanishing.
            last = len(self.topics)
            ordered = tuple(sorted(topics, key=lambda t: (self._topic_rank.get(t, last), t)))
            self._orders[topics] = ordered
        return ordered

    def _subscriber(self, row: Row[Any], topics: Iterable[str]) -> Subscriber:
        return Subscriber(
            id=row.id,
            email=row.email,
            name=row.name,
            status=row.status,
            topics=self._ordered(topics),
            attributes=dict(row.attributes),
            link_key=row.link_key,
        )

    def _recipient_filter(self, topics: Sequence[str] | None) -> ColumnElement[bool]:
        return self._filter("active", topics)

    def _filter(self, status: str | None, topics: Sequence[str] | None) -> ColumnElement[bool]:
        if status is not None and status not in SUBSCRIBER_STATUSES:
            raise StoreError(
                f"unknown status {status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
            )
        return subscriber_condition(
            status=status, topics=None if topics is None else self.check_topics(topics)
        )

    def _pages(
        self, condition: ColumnElement[bool], columns: Iterable[ColumnElement[Any]]
    ) -> Iterator[tuple[Row[Any], tuple[str, ...]]]:
        last_id = 0
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(*columns)
                    .where(condition, subscribers.c.id > last_id)
                    .order_by(subscribers.c.id)
                    .limit(PAGE_SIZE)
                ).all()
                if not rows:
                    return
                topics = _topics_of(connection, [row.id for row in rows])
            for row in rows:
                yield row, topics.get(row.id, ())
            last_id = rows[-1].id

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock at BEGIN."""
        with self.engine.connect() as connection:
            connection.execution_options(write=True)
            with connection.begin():
                yield connection

    def _write_retrying(
        self, work: Callable[[Connection], T], *, rollback: bool = False, attempts: int = 3
    ) -> T:
        """``work`` in a write transaction, run again if it lost a race to insert an address.

        Between our look-up and our insert another process may add the same address
        (PostgreSQL; SQLite writers are serialised): the unique key refuses ours, and
        the next attempt finds theirs and merges into it.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.engine.connect() as connection:
                    connection.execution_options(write=True)
                    with connection.begin() as transaction:
                        result = work(connection)
                        if rollback:
                            transaction.rollback()
                return result
            except IntegrityError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")


def unknown_topic_message(topic: str, known: Sequence[str]) -> str:
    if not known:
        return (
            f"unknown topic {topic!r}: newsletter.yaml defines no topics; "
            "add them under 'topics:' in newsletter.yaml"
        )
    return (
        f"unknown topic {topic!r}; known topics: {', '.join(known)} "
        "(add new topics under 'topics:' in newsletter.yaml)"
    )


def insert_ignoring_duplicates(
    connection: Connection, table: Any, rows: list[dict[str, Any]]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, on either database."""
    if not rows:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(dialect.insert(table).on_conflict_do_nothing(), rows)


def link_matches(link_key: str | None) -> ColumnElement[bool]:
    """The rows a link carrying ``link_key`` may act on (None: a link without one)."""
    if link_key is None:
        return subscribers.c.legacy_links.is_(true())
    return subscribers.c.link_key == link_key


def _lookup_key(email: str) -> str:
    """The key to look an address up by; a malformed address simply matches nothing."""
    try:
        return address_key(normalize_address(email))
    except StoreError:
        return email.strip().lower()


def _hash_suppressed(connection: Connection, digest: str) -> bool:
    found = connection.scalar(
        select(func.count()).select_from(suppressions).where(suppressions.c.email_hash == digest)
    )
    return bool(found)


def _transition(
    connection: Connection,
    subscriber_id: int,
    only_if: ColumnElement[bool],
    **values: Any,
) -> bool:
    result = connection.execute(
        update(subscribers).where(subscribers.c.id == subscriber_id, only_if).values(**values)
    )
    return result.rowcount == 1


def _insert_topics(connection: Connection, subscriber_id: int, topics: Sequence[str]) -> None:
    # A concurrent merge may have added the same topic a moment ago: that is fine.
    insert_ignoring_duplicates(
        connection,
        subscriber_topics,
        [{"subscriber_id": subscriber_id, "topic": topic} for topic in topics],
    )


def _topics_of(connection: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    if not ids:
        return {}
    rows = connection.execute(
        select(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic)
        .where(subscriber_topics.c.subscriber_id.in_(ids))
        .order_by(subscriber_topics.c.subscriber_id, subscriber_topics.c.topic)
    )
    for subscriber_id, topic in rows:
        found.setdefault(subscriber_id, []).append(topic)
    return {subscriber_id: tuple(topics) for subscriber_id, topics in found.items()}


def _log(
    connection: Connection,
    subscriber_id: int,
    event: str,
    *,
    source: str = "",
    ip: str | None = None,
    at: dt.datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    connection.execute(
        insert(subscriber_events).values(
            subscriber_id=subscriber_id,
            at=at or now(),
            event=event,
            source=source,
            ip=ip,
            detail=detail or {},
        )
    )


def _record(row: Row[Any], topics: Sequence[str]) -> dict[str, Any]:
    return {
        "email": row.email,
        "name": row.name,
        "status": row.status,
        "topics": list(topics),
        "attributes": dict(row.attributes),
        "source": row.source,
        "subscribed_at": _iso(row.opt_in_at),
        "subscribed_ip": row.opt_in_ip,
        "confirmed_at": _iso(row.confirmed_at),
        "confirmed_ip": row.confirmed_ip,
        "unsubscribed_at": _iso(row.unsubscribed_at),
        "unsubscribe_source": row.unsubscribe_source,
        "unsubscribe_reason": row.unsubscribe_reason,
        "unsubscribe_campaign_id": row.unsubscribe_campaign_id,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
