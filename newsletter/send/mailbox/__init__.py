"""Mail that comes back: bounces, abuse complaints and mailto unsubscribes.

``process_mailbox(config)`` reads the mailbox named by ``mailbox.url``
(:mod:`~newsletter.send.mailbox.sources`), classifies each message
(:mod:`~newsletter.send.mailbox.classify`: who it is about comes only from a signed token,
checked against the subscriber's current link key, looked up once per chunk),
applies what it means to the store in one transaction per chunk
(:func:`newsletter.store.returns.record_returns`), and then flags or moves the
messages at the source. A message is remembered in the database before it is flagged,
so a run that dies in between, or a POP3 box that cannot flag, changes nothing twice;
one an earlier run processed is not read again.

Each message is read within bounds (:mod:`~newsletter.send.mailbox.guard`): one that is
too large, too deep or too slow, or that the parser cannot read, is set aside
(``quarantine``, remembered like any other) and the run goes on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from newsletter.config import Config
from newsletter.send.mailbox.classify import ACTED_ON, Classified, quick_key
from newsletter.send.mailbox.guard import Limits, Reader
from newsletter.send.mailbox.sources import Fetched, Source, open_source
from newsletter.send.return_tokens import LinkKeyOf, ReturnTokens, named_subscribers
from newsletter.store import Store, open_store
from newsletter.store.returns import (
    Recorded,
    Return,
    link_keys,
    processed_kinds,
    record_returns,
)
from newsletter.tokens import require_secret

KINDS = (
    "hard_bounce",
    "soft_bounce",
    "blocked",
    "complaint",
    "unsubscribe",
    "unverified",
    "auto_reply",
    "other",
    "quarantine",
)


@dataclass
class MailboxSummary:
    source: str
    counts: Counter[str] = field(default_factory=Counter)  # messages per kind, this run
    quarantined: list[tuple[str, str]] = field(default_factory=list)  # (message, reason)
    quarantine_folder: str | None = None  # where they went (None: left in place)
    already_processed: int = 0
    bounced: int = 0  # subscribers marked bounced (hard bounces, soft ones past the limit)
    complained: int = 0
    unsubscribed: int = 0
    ledger_failed: int = 0
    ledger_blocked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "messages": {kind: self.counts[kind] for kind in KINDS},
            "quarantined": [
                {"message": label, "reason": reason} for label, reason in self.quarantined
            ],
            "quarantine_folder": self.quarantine_folder,
            "already_processed": self.already_processed,
            "subscribers": {
                "bounced": self.bounced,
                "complained": self.complained,
                "unsubscribed": self.unsubscribed,
            },
            "ledger_failed": self.ledger_failed,
            "ledger_blocked": self.ledger_blocked,
        }

    def add(self, recorded: Recorded) -> None:
        self.bounced += recorded.bounced
        self.complained += recorded.complained
        self.unsubscribed += recorded.unsubscribed
        self.ledger_failed += recorded.ledger_failed
        self.ledger_blocked += recorded.ledger_blocked


def process_mailbox(config: Config, *, source: Source | None = None) -> MailboxSummary:
    """Read the mailbox once and apply every bounce, complaint and mailto unsubscribe."""
    limits = Limits(config.mailbox.max_message_size, config.mailbox.message_timeout)
    reader = Reader(ReturnTokens(require_secret()), limits)
    source = source or open_source(config)
    summary = MailboxSummary(source.description, quarantine_folder=source.quarantine_folder)
    store = open_store(config)
    try:
        with reader:
            for chunk in source.chunks():
                _process_chunk(config, store, source, reader, chunk, summary)
    finally:
        store.close()
        source.close()
    return summary


def _process_chunk(
    config: Config,
    store: Store,
    source: Source,
    reader: Reader,
    chunk: list[Fetched],
    summary: MailboxSummary,
) -> None:
    keys = [quick_key(item.raw) for item in chunk]
    # Processed by an earlier run (a POP3 box keeps what was not acted on): not read again.
    earlier = processed_kinds(store, keys)
    fresh = [item for item, key in zip(chunk, keys, strict=True) if key not in earlier]
    link_key_of = _chunk_link_keys(store, [item.raw for item in fresh])
    classified = [reader.classify(item.raw, item.size, link_key_of) for item in fresh]
    recorded = record_returns(
        store,
        [_as_return(item) for item in classified],
        soft_bounce_limit=config.bounces.soft_bounce_limit,
    )
    summary.add(recorded)
    summary.already_processed += len(chunk) - len(fresh)
    kind_of = {
        item.handle: earlier[key] for item, key in zip(chunk, keys, strict=True) if key in earlier
    }
    for position, (item, outcome) in enumerate(zip(fresh, classified, strict=True)):
        kind_of[item.handle] = outcome.kind
        if position in recorded.duplicates:
            summary.already_processed += 1
            continue
        summary.counts[outcome.kind] += 1
        if outcome.kind == "quarantine":
            summary.quarantined.append((item.label, outcome.reason))
    handles = [item.handle for item in chunk]
    source.finish(
        handles,
        [handle for handle in handles if kind_of[handle] in ACTED_ON],
        [handle for handle in handles if kind_of[handle] == "quarantine"],
    )


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
