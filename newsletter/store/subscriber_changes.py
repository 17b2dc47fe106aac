"""Changing subscribers: status changes, preferences, erasure and suppression.

Every change is one short transaction, written so that concurrent web workers, the
CLI and the sender can share the database: status changes go through
:mod:`~newsletter.store.statuses` (who may move from which status to which, and one
conditional ``UPDATE``), so two processes confirming or unsubscribing the same person
at once do it exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, select, update

from newsletter.errors import StoreError
from newsletter.models import SUPPRESSED_STATUSES, Subscriber
from newsletter.safe_text import without_controls
from newsletter.store.addresses import address_hash
from newsletter.store.automation_tables import enter
from newsletter.store.schema import subscriber_topics, subscribers, suppressions
from newsletter.store.statuses import StatusChange, change_statuses, move
from newsletter.store.store_base import StoreBase
from newsletter.store.subscriber_rows import (
    NOT_UNSUBSCRIBED,
    hash_suppressed,
    insert_ignoring_duplicates,
    insert_topics,
    log_event,
    lookup_key,
    now,
    topics_of,
)


class SubscriberChanges(StoreBase):
    """The store's status changes, preferences and erasure."""

    def change_statuses(
        self, changes: Iterable[StatusChange], *, when: dt.datetime | None = None
    ) -> list[StatusChange]:
        """Subscribers leaving (unsubscribed, bounced, complained), many at once in one
        transaction, as far as :data:`~newsletter.store.statuses.MOVES` allows; the
        changes that took effect. See :func:`newsletter.store.statuses.change_statuses`."""
        with self._writing() as connection:
            return change_statuses(connection, changes, when=when)

    def confirm(self, subscriber_id: int, *, ip: str | None) -> bool:
        """Double opt-in: pending becomes active; False if it was not pending.

        A confirmed address is no longer erased: the person has given their consent
        again, so its hash leaves the suppression list.
        """
        when = now()
        with self._writing() as connection:
            changed = move(
                connection,
                subscriber_id,
                "confirm",
                confirmed_at=when,
                confirmed_ip=ip,
                updated_at=when,
                was_active=True,
            )
            if changed:
                log_event(connection, subscriber_id, "confirmed", source="web", ip=ip, at=when)
                enter(connection, [subscriber_id], when, "confirmed")
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
        self, subscriber_id: int, *, source: str, reason: str = "", campaign_id: int | None = None
    ) -> bool:
        """Stop mailing a pending or active subscriber; False if already suppressed."""
        change = StatusChange(subscriber_id, "unsubscribed", source, reason, campaign_id)
        return bool(self.change_statuses([change]))

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
        with self._writing() as connection:
            holders = [
                id_
                for id_, link_key, legacy_links in connection.execute(
                    select(
                        subscribers.c.id, subscribers.c.link_key, subscribers.c.legacy_links
                    ).where(subscribers.c.id.in_(list(wanted)))
                )
                if (legacy_links if keys[id_] is None else keys[id_] == link_key)
            ]
            changed = change_statuses(
                connection,
                [
                    StatusChange(id_, "unsubscribed", source, campaign_id=wanted[id_])
                    for id_ in sorted(holders)
                ],
            )
        return {change.subscriber_id for change in changed}

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
            changed = move(
                connection,
                subscriber_id,
                "resubscribe",
                opt_in_at=when,
                opt_in_ip=ip,
                confirmed_at=when,
                confirmed_ip=ip,
                **NOT_UNSUBSCRIBED,
                updated_at=when,
            )
            if changed:
                log_event(connection, subscriber_id, "resubscribed", source=source, ip=ip, at=when)
        return changed

    def restart_signup(self, subscriber_id: int, *, source: str, ip: str | None = None) -> bool:
        """Unsubscribed, never confirmed, now asking to subscribe: pending again, waiting
        for a confirmation like any signup. False if that is not the subscriber's case."""
        when = now()
        with self._writing() as connection:
            changed = move(
                connection,
                subscriber_id,
                "restart_signup",
                opt_in_at=when,
                opt_in_ip=ip,
                **NOT_UNSUBSCRIBED,
                updated_at=when,
            )
            if changed:
                log_event(
                    connection, subscriber_id, "signup-restarted", source=source, ip=ip, at=when
                )
        return changed

    def mark(self, subscriber_id: int, status: str, *, reason: str = "") -> bool:
        """Record a hard bounce or a spam complaint; a complaint is never downgraded."""
        if status not in ("bounced", "complained"):
            raise StoreError(f"mark() takes 'bounced' or 'complained', not {status!r}")
        return bool(self.change_statuses([StatusChange(subscriber_id, status, "provider", reason)]))

    def update_preferences(
        self, subscriber_id: int, *, name: str | None = None, topics: Sequence[str] | None = None
    ) -> Subscriber:
        """Change the name and/or replace the topics; a status is never changed here."""
        wanted_topics = None if topics is None else self.check_topics(topics)
        with self._writing() as connection:
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id)
            ).one_or_none()
            if row is None:
                raise StoreError(f"no subscriber with id {subscriber_id}")
            current = topics_of(connection, [subscriber_id]).get(subscriber_id, ())
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
                insert_topics(connection, subscriber_id, wanted_topics)
                connection.execute(
                    update(subscribers)
                    .where(subscribers.c.id == subscriber_id)
                    .values(updated_at=now())
                )
                detail["topics"] = list(wanted_topics)
                current = wanted_topics
            if detail:
                log_event(connection, subscriber_id, "preferences", source="web", detail=detail)
            row = connection.execute(
                select(subscribers).where(subscribers.c.id == subscriber_id)
            ).one()
            return self._subscriber(row, current)

    def forget(self, email: str) -> bool:
        """Erase a person (GDPR art. 17): delete everything, keep only a hash.

        The SHA-256 of the normalised address goes on the suppression list, so the
        address is never mailed, added or imported again, unless the person signs up
        again through the form and confirms (see :meth:`add`). True if a subscriber
        was deleted; the hash is recorded either way.
        """
        digest = address_hash(email)
        key = lookup_key(email)
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
        key = lookup_key(email)
        with self.engine.connect() as connection:
            status = connection.scalar(
                select(subscribers.c.status).where(subscribers.c.email_key == key)
            )
            if status in SUPPRESSED_STATUSES:
                return True
            return hash_suppressed(connection, address_hash(email))

    def is_erased(self, email: str) -> bool:
        """True if the person asked to be forgotten (their address's hash is kept)."""
        with self.engine.connect() as connection:
            return hash_suppressed(connection, address_hash(email))

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
