"""Shared pieces of the subject test suites: the seed issue with subject variants, the
fake SendGrid with tracking, and clicks reported through the provider events' home."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import select

from newsletter.config import Config
from newsletter.send.provider_events import EventProcessor
from newsletter.send.webhook_event import provider_event
from newsletter.store import Store
from newsletter.store.schema import ledger
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED

SUBJECTS = ("Stem cells in breast milk", "What is in breast milk besides food?")


def with_variants(project: Path, *variants: str, ab: str = "") -> Path:
    """The seed issue with ``subject_variants:`` (and an ``ab:`` line) in its front matter."""
    path = project / SEED
    chosen = variants or SUBJECTS
    lines = f"subject_variants: [{', '.join(repr(v) for v in chosen)}]\n"
    if ab:
        lines += f"ab: {ab}\n"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("---\n", "---\n" + lines, 1), encoding="utf-8")
    return path


def tracked_sendgrid(
    configure: Callable[..., Config], sendgrid: FakeSendGrid, **ab: object
) -> Config:
    return configure(
        provider="sendgrid",
        sendgrid={"api_host": sendgrid.url, "tracking": True, "batch_size": 10},
        ab={"sample": "20%", "wait": "4h", "min_events": 2, **ab},
    )


def subjects_received(sendgrid: FakeSendGrid) -> dict[str, list[str]]:
    """Each address and the subjects it got, in order."""
    got: dict[str, list[str]] = {}
    for message in sendgrid.messages():
        for to in message.to:
            got.setdefault(to["email"], []).append(message.subject)
    return got


def variants_in_ledger(store: Store, campaign_id: int) -> dict[int, int | None]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ledger.c.subscriber_id, ledger.c.variant).where(
                ledger.c.campaign_id == campaign_id
            )
        ).all()
    return {subscriber_id: variant for subscriber_id, variant in rows}


def report_events(store: Store, campaign_id: int, kind: str, subscriber_ids: Iterable[int]) -> None:
    """SendGrid's Event Webhook reporting ``kind`` (click, open) by these readers, through
    the one place provider events are applied."""
    events = [
        provider_event(
            "sendgrid",
            event_id=f"{kind}-{campaign_id}-{subscriber_id}",
            kind=kind,
            email=store_email(store, subscriber_id),
            tags={"campaign_id": str(campaign_id), "subscriber_id": str(subscriber_id)},
            message_id=None,
            new_status=None,
            reason=None,
        )
        for subscriber_id in subscriber_ids
    ]
    EventProcessor(store, tracked_by={"sendgrid"}).apply(events)


def store_email(store: Store, subscriber_id: int) -> str:
    found = store.get(subscriber_id)
    assert found is not None
    return found.email


def by_variant(variants: dict[int, int | None]) -> Counter[int | None]:
    return Counter(variants.values())


def later(hours: float) -> Callable[[], dt.datetime]:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    return lambda: moment
