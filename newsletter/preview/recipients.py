"""Who an issue is previewed for: a real subscriber where the store exists, else sample data.

Opening the store creates or migrates its database, and a preview must not leave a
database behind, so a SQLite store is only opened when its file already exists.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from email.utils import parseaddr
from pathlib import Path

from newsletter.config import Config
from newsletter.models import Personalization, Subscriber
from newsletter.send.campaign_rows import Campaign, find_campaign
from newsletter.store import Store, open_store
from newsletter.tokens import Links, Signer, sample_personalization, secret_or_development

PICKER_LIMIT = 200  # the picker lists this many subscribers; any address can be typed


@dataclass(frozen=True)
class Recipient:
    personalization: Personalization
    source: str  # where the values come from, shown next to the picker
    notice: str = ""  # why the preview differs from what was asked for
    # A real subscriber's (id, link key), for the tokens of their copy; None: sample data.
    subscriber: tuple[int, str] | None = None


def sqlite_file(database_url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else Path(path)


class Recipients:
    """Resolves the ``--as`` address (or the picker's) to the values of one recipient."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._store: Store | None = None

    @property
    def store_name(self) -> str:
        file = sqlite_file(self.config.database)
        return file.name if file else "the subscriber database"

    def store(self) -> Store | None:
        """The subscriber store, or None while there is none (looked for again each time)."""
        if self._store is None:
            file = sqlite_file(self.config.database)
            if file is None or file.is_file():
                self._store = open_store(self.config)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def resolve(self, address: str | None, slug: str) -> Recipient:
        sample = sample_personalization(self.config, slug)
        if not address or not address.strip():
            return Recipient(sample, "sample data")
        name, email = parseaddr(address.strip())
        if "@" not in email:
            return Recipient(
                sample, "sample data", f"{address!r} is not an email address: showing sample data"
            )
        store = self.store()
        if store is None:
            return Recipient(replace(sample, email=email, name=name), "sample data")
        subscriber = store.find(email)
        if subscriber is None:
            return Recipient(
                replace(sample, email=email, name=name),
                "sample data",
                f"{email} is not a subscriber in {self.store_name}: showing sample data",
            )
        return Recipient(
            self._personalization(subscriber, slug),
            f"subscriber #{subscriber.id} ({subscriber.status}) in {self.store_name}",
            subscriber=(subscriber.id, subscriber.link_key),
        )

    def campaign(self, slug: str) -> Campaign | None:
        """The issue's campaign, once it has started: its copies carry its id."""
        store = self.store()
        return None if store is None else find_campaign(store, slug)

    def choices(self) -> list[tuple[str, str]]:
        """(address, label) pairs for the picker: the sample reader, then subscribers."""
        sample = sample_personalization(self.config, "")
        choices = [("", f"{sample.name} <{sample.email}> (sample data)")]
        store = self.store()
        if store is not None:
            for subscriber in itertools.islice(store.recipients(None), PICKER_LIMIT):
                label = f"{subscriber.name} <{subscriber.email}>" if subscriber.name else ""
                choices.append((subscriber.email, label or subscriber.email))
        return choices

    def _personalization(self, subscriber: Subscriber, slug: str) -> Personalization:
        links = Links(self.config, Signer(secret_or_development()))
        campaign = self.campaign(slug)
        campaign_id = None if campaign is None else campaign.id
        return Personalization(
            email=subscriber.email,
            name=subscriber.name,
            unsubscribe_url=links.unsubscribe(subscriber.id, subscriber.link_key, campaign_id),
            preferences_url=links.preferences(subscriber.id, subscriber.link_key),
            view_url=links.view(slug),
        )
