"""A durable queue for mail a reader asked for: signup confirmations, manage links.

The web app answers a signup at once (its timing must not tell whether an address is
known) and sends the mail afterwards. The letter is committed to the ``mail_queue``
table *before* the answer, so a process that dies after answering loses nothing: the
next process that drains the queue (the web app's mail thread, every few seconds and
at start, or ``newsletter flush-mail``) sends it.

Each letter is claimed before it is sent (``claimed_by``/``claimed_until``), so two
workers never send it at once; a claim of a dead process on this host is taken over
at once, one from another host when it runs out. A letter is deleted once its
provider accepted it. The guarantee is at-least-once: a process killed between the
provider's answer and the delete sends that one letter again (a second confirmation
link, harmless). Failures are retried with back-off; after :data:`MAX_ATTEMPTS` the
letter is kept as failed (logged, and shown by ``newsletter flush-mail``), never
silently dropped.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, or_, select, update

from newsletter.send.lease import owner_alive
from newsletter.send.providers import Delivery
from newsletter.store.mail_queue_table import mail_queue

MAX_ATTEMPTS = 10
FIRST_RETRY = dt.timedelta(minutes=1)
LAST_RETRY = dt.timedelta(hours=1)  # the cap: ten attempts span about five hours
# Longer than any one send (provider timeouts are seconds), so a live claim never lapses.
CLAIM_FOR = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Letter:
    to: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Queued:
    id: int
    letter: Letter
    attempts: int


@dataclass
class QueueTally:
    sent: int = 0
    retrying: int = 0
    failed: int = 0  # given up on in this run
    errors: list[str] = field(default_factory=list)


SendLetter = Callable[[Letter], Delivery]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def process_owner() -> str:
    """``host:pid:random``, as the campaign lease names its holder."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def enqueue(engine: Engine, letter: Letter) -> int:
    """Commit ``letter`` to the queue, due now; its id."""
    when = now()
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        queued_id = connection.scalar(
            mail_queue.insert()
            .values(
                to_address=letter.to,
                subject=letter.subject,
                html=letter.html,
                text=letter.text,
                created_at=when,
                attempts=0,
                due_at=when,
            )
            .returning(mail_queue.c.id)
        )
    return int(queued_id)


def claim_due(engine: Engine, owner: str, *, limit: int = 20) -> list[Queued]:
    """Claim up to ``limit`` letters that are due and not being sent by a live process."""
    when = now()
    due = (mail_queue.c.failed_at.is_(None), mail_queue.c.due_at <= when)
    with engine.connect() as connection:
        rows = connection.execute(
            select(mail_queue.c.id, mail_queue.c.claimed_by, mail_queue.c.claimed_until)
            .where(*due)
            .order_by(mail_queue.c.id)
            .limit(limit * 5)
        ).all()
    free = [
        (row_id, claimed_by)
        for row_id, claimed_by, until in rows
        if claimed_by is None or until < when or not owner_alive(claimed_by)
    ][:limit]
    claimed: list[Queued] = []
    for row_id, claimed_by in free:
        was = (
            mail_queue.c.claimed_by.is_(None)
            if claimed_by is None
            else mail_queue.c.claimed_by == claimed_by
        )
        with engine.connect().execution_options(write=True) as connection, connection.begin():
            taken = connection.execute(
                update(mail_queue)
                .where(mail_queue.c.id == row_id, was, *due)
                .values(claimed_by=owner, claimed_until=when + CLAIM_FOR)
                .returning(
                    mail_queue.c.to_address,
                    mail_queue.c.subject,
                    mail_queue.c.html,
                    mail_queue.c.text,
                    mail_queue.c.attempts,
                )
            ).one_or_none()
        if taken is not None:
            to, subject, html, text, attempts = taken
            claimed.append(Queued(row_id, Letter(to, subject, html, text), attempts))
    return claimed


def settle(engine: Engine, queued: Queued, delivery: Delivery | None, error: str) -> str:
    """Record one attempt: ``sent`` (deleted), ``retrying`` or ``failed`` (given up)."""
    when = now()
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        if delivery is not None and delivery.status == "sent":
            connection.execute(delete(mail_queue).where(mail_queue.c.id == queued.id))
            return "sent"
        attempts = queued.attempts + 1
        gave_up = attempts >= MAX_ATTEMPTS or (delivery is not None and delivery.status == "failed")
        delay = min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)
        connection.execute(
            update(mail_queue)
            .where(mail_queue.c.id == queued.id)
            .values(
                attempts=attempts,
                due_at=when + delay,
                claimed_by=None,
                claimed_until=None,
                last_error=error[:2000],
                failed_at=when if gave_up else None,
            )
        )
    return "failed" if gave_up else "retrying"


def send_due(engine: Engine, send: SendLetter, owner: str | None = None) -> QueueTally:
    """Send every letter due now (until none is left to claim); what became of them."""
    owner = owner or process_owner()
    tally = QueueTally()
    while batch := claim_due(engine, owner):
        for queued in batch:
            delivery: Delivery | None = None
            try:
                delivery = send(queued.letter)
                error = delivery.error or delivery.status
            except Exception as problem:  # the provider unreachable, refusing, ...
                error = str(problem) or type(problem).__name__
            outcome = settle(engine, queued, delivery, error)
            if outcome == "sent":
                tally.sent += 1
            elif outcome == "retrying":
                tally.retrying += 1
            else:
                tally.failed += 1
                tally.errors.append(f"{queued.letter.subject!r}: {error}")
    return tally


@dataclass(frozen=True)
class QueueState:
    waiting: int  # not sent yet (due now or later)
    failed: int  # given up on
    next_due: dt.datetime | None


def queue_state(engine: Engine) -> QueueState:
    with engine.connect() as connection:
        waiting = connection.scalar(select(func.count()).where(mail_queue.c.failed_at.is_(None)))
        failed = connection.scalar(select(func.count()).where(mail_queue.c.failed_at.is_not(None)))
        next_due = connection.scalar(
            select(func.min(mail_queue.c.due_at)).where(mail_queue.c.failed_at.is_(None))
        )
    return QueueState(waiting or 0, failed or 0, next_due)


def due_now(engine: Engine) -> int:
    """Letters due now, claimed or not (for draining: 0 means nothing left to do)."""
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count()).where(
                mail_queue.c.failed_at.is_(None),
                or_(mail_queue.c.due_at <= now(), mail_queue.c.claimed_by.is_not(None)),
            )
        )
    return count or 0
