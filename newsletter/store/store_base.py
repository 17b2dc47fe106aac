"""What every part of the subscriber store shares: the engine, the configured topics,
keyset paging and write transactions (:class:`~newsletter.store.subscribers.Store`
is made of this base, its reads and its changes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Row, select
from sqlalchemy.exc import IntegrityError

from newsletter.errors import StoreError
from newsletter.models import SUBSCRIBER_STATUSES, Subscriber
from newsletter.store.database import writing
from newsletter.store.schema import subscribers
from newsletter.store.subscriber_rows import subscriber_condition, topics_of, unknown_topic_message

T = TypeVar("T")
PAGE_SIZE = 1000  # rows per keyset page when streaming


class StoreBase:
    """Subscribers in one database; ``topics`` are the ids ``newsletter.yaml`` defines."""

    def __init__(self, engine: Engine, topics: Sequence[str]) -> None:
        self.engine = engine
        self.topics = tuple(topics)
        # Topics always come out in the order newsletter.yaml lists them.
        self._topic_rank = {topic: rank for rank, topic in enumerate(self.topics)}
        self._orders: dict[tuple[str, ...], tuple[str, ...]] = {}

    def close(self) -> None:
        self.engine.dispose()

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
                topics = topics_of(connection, [row.id for row in rows])
            for row in rows:
                yield row, topics.get(row.id, ())
            last_id = rows[-1].id

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock at BEGIN."""
        with writing(self.engine) as connection:
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
