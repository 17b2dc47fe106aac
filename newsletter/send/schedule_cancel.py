"""``newsletter schedule cancel``: an entry taken off the queue, and a send of it already
running told to stop before its next batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select

from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.send import campaign_rows
from newsletter.send.lease import lease_holder
from newsletter.send.schedule_queue import Scheduled, find_entry
from newsletter.send.status import slug_of
from newsletter.store import Store, open_store
from newsletter.store.scheduling import schedules


@dataclass(frozen=True)
class Cancellation:
    """What ``schedule cancel`` did, and what it means for a campaign already started."""

    entry: Scheduled  # as it was
    campaign_id: int | None  # its campaign, if it started
    counts: dict[str, int] | None  # that campaign's ledger, right after the cancel
    sender: str | None  # the process sending it right now: it stops before its next batch


def cancel(config: Config, issue: str) -> Cancellation:
    """Take ``issue`` (a file or its slug) off the queue.

    A send of it already running (``run-due``) asks before each batch whether its entry
    is still there (:func:`schedule_cancelled`), so it stops before its next batch, says
    so, and leaves everyone not yet handed over ``pending``; ``newsletter send`` resumes
    the campaign. The :class:`Cancellation` says which of these applies.
    """
    slug = slug_of(issue)
    store = open_store(config)
    try:
        entry = find_entry(store, slug)
        if entry is None or entry.state == "sent":
            raise SendError(
                f"{issue}: nothing scheduled for it; 'newsletter schedule' lists what is"
            )
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(
                delete(schedules).where(schedules.c.slug == slug, schedules.c.state != "sent")
            )
        campaign = campaign_rows.find_campaign(store, slug)
        if campaign is None:
            return Cancellation(entry, None, None, None)
        counts = campaign_rows.state_counts(store, campaign.id)
        return Cancellation(entry, campaign.id, counts, lease_holder(store, slug))
    finally:
        store.close()


# The reason a scheduled send stops when its entry is cancelled while it runs.
CANCELLED = (
    "its schedule was cancelled ('newsletter schedule cancel'); everyone not yet sent "
    "stays pending: 'newsletter send' of the issue resumes it"
)


def schedule_cancelled(store: Store, slug: str) -> Callable[[], str | None]:
    """Asked by the sender before each batch: :data:`CANCELLED` once the entry is gone."""

    def cancelled() -> str | None:
        with store.engine.connect() as connection:
            there = connection.scalar(select(schedules.c.slug).where(schedules.c.slug == slug))
        return None if there is not None else CANCELLED

    return cancelled
