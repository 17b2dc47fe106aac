"""Mail that comes back: bounces, abuse complaints and mailto unsubscribes.

``process_mailbox(config)`` reads the mailbox named by ``mailbox.url``
(:mod:`~newsletter.send.mailbox.sources`), classifies each message
(:mod:`~newsletter.send.mailbox.classify`: who it is about comes only from a signed token,
checked against the subscriber's current link key, looked up once per chunk),
applies what it means to the store in one transaction per chunk
(:func:`newsletter.store.returns.record_returns`), and then flags or moves the
messages at the source. A message is remembered in the database before it is flagged,
so a run that dies in between, or a POP3 box that cannot flag, changes nothing twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from newsletter.config import Config

# Aliased: the name ``classify`` stays the submodule's.
from newsletter.send.mailbox.classify import ACTED_ON, Classified
from newsletter.send.mailbox.classify import classify as classify_message
from newsletter.send.mailbox.sources import Source, open_source
from newsletter.send.return_tokens import LinkKeyOf, ReturnTokens, named_subscribers
from newsletter.store import Store, open_store
from newsletter.store.returns import Recorded, Return, link_keys, record_returns
from newsletter.tokens import require_secret

KINDS = (
    "hard_bounce",
    "soft_bounce",
    "complaint",
    "unsubscribe",
    "unverified",
    "auto_reply",
    "other",
)


@dataclass
class MailboxSummary:
    source: str
    counts: Counter[str] = field(default_factory=Counter)  # messages per kind, this run
    already_processed: int = 0
    bounced: int = 0  # subscribers marked bounced (hard bounces, soft ones past the limit)
    complained: int = 0
    unsubscribed: int = 0
    ledger_failed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "messages": {kind: self.counts[kind] for kind in KINDS},
            "already_processed": self.already_processed,
            "subscribers": {
                "bounced": self.bounced,
                "complained": self.complained,
                "unsubscribed": self.unsubscribed,
            },
            "ledger_failed": self.ledger_failed,
        }

    def add(self, recorded: Recorded) -> None:
        self.bounced += recorded.bounced
        self.complained += recorded.complained
        self.unsubscribed += recorded.unsubscribed
        self.ledger_failed += recorded.ledger_failed


def process_mailbox(config: Config, *, source: Source | None = None) -> MailboxSummary:
    """Read the mailbox once and apply every bounce, complaint and mailto unsubscribe."""
    tokens = ReturnTokens(require_secret())
    source = source or open_source(config)
    summary = MailboxSummary(source.description)
    store = open_store(config)
    try:
        for chunk in source.chunks():
            _process_chunk(config, store, source, tokens, chunk, summary)
    finally:
        store.close()
        source.close()
    return summary


def _process_chunk(
    config: Config,
    store: Store,
    source: Source,
    tokens: ReturnTokens,
    chunk: list[tuple[str, bytes]],
    summary: MailboxSummary,
) -> None:
    link_key_of = _chunk_link_keys(store, [raw for _, raw in chunk])
    classified = [classify_message(raw, tokens, link_key_of) for _, raw in chunk]
    recorded = record_returns(
        store,
        [_as_return(item) for item in classified],
        soft_bounce_limit=config.bounces.soft_bounce_limit,
    )
    summary.add(recorded)
    for position, item in enumerate(classified):
        if position in recorded.duplicates:
            summary.already_processed += 1
        else:
            summary.counts[item.kind] += 1
    acted_on = [
        handle for (handle, _), item in zip(chunk, classified, strict=True) if item.kind in ACTED_ON
    ]
    source.finish([handle for handle, _ in chunk], acted_on)


def _chunk_link_keys(store: Store, messages: list[bytes]) -> LinkKeyOf:
    """The current link key of everyone the chunk's tokens may name, in one query.

    A token the raw bytes do not show (in a base64-encoded subject) costs one query
    more. Between this and :func:`record_returns` a subscriber may be erased, which
    changes nothing there either; ids are never reused.
    """
    known: dict[int, str | None] = dict.fromkeys(named_subscribers(messages))
    known.update(link_keys(store, known))

    def link_key_of(subscriber_id: int) -> str | None:
        if subscriber_id not in known:
            known[subscriber_id] = link_keys(store, [subscriber_id]).get(subscriber_id)
        return known[subscriber_id]

    return link_key_of


def _as_return(item: Classified) -> Return:
    if item.claim is None or item.kind not in ACTED_ON:
        return Return(item.key, item.kind)
    return Return(
        item.key, item.kind, item.claim.subscriber_id, item.claim.campaign_id, item.reason
    )
