"""Fixtures of the mailbox suite: real-looking returned mail, signed for test subscribers.

``returned(name, subscriber, campaign_id)`` is one of the messages in ``messages/``
(bounces as Postfix, Exim, Gmail and Microsoft send them, an abuse report, an
out-of-office, a mailto unsubscribe, a question) with its placeholders filled: ``{VERP}``
the signed return path of that subscriber's copy, ``{RCPT}`` their address,
``{MAILTO_SUBJECT}`` the signed mailto subject, ``{N}`` a unique number. ``subscriber``
is a stored :class:`Subscriber` (signed with their id and link key), or a bare id for
the tests without a store (signed with :data:`LINK_KEY`, which ``link_keys`` knows for
every id).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.models import Subscriber
from newsletter.send.return_tokens import ReturnTokens

MESSAGES = Path(__file__).parent / "messages"
SECRET = "test-secret-key-for-the-mailbox-tests-0123456789"
BOUNCE_ADDRESS = "bounces@breastfeedingworld.example"
LINK_KEY = "k3y-Of_4Ll42"  # every bare id's link key in the tests without a store
_unique = itertools.count(1)

Returned = Callable[..., bytes]


def link_keys(subscriber_id: int) -> str | None:
    """The stand-in for the store in the tests without one: every id has :data:`LINK_KEY`."""
    return LINK_KEY


def fill(
    name: str,
    subscriber_id: int,
    campaign_id: int | None,
    *,
    tokens: ReturnTokens,
    link_key: str = LINK_KEY,
    address: str | None = None,
    unique: int | None = None,
) -> bytes:
    text = (MESSAGES / f"{name}.eml").read_text(encoding="utf-8")
    values = {
        "{VERP}": tokens.envelope_sender(BOUNCE_ADDRESS, subscriber_id, link_key, campaign_id),
        "{RCPT}": address or f"reader{subscriber_id}@example.net",
        "{MAILTO_SUBJECT}": tokens.mailto_subject(subscriber_id, link_key, campaign_id),
        "{N}": str(unique if unique is not None else next(_unique)),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text.replace("\n", "\r\n").encode()


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> ReturnTokens:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    return ReturnTokens(SECRET)


@pytest.fixture
def returned(tokens: ReturnTokens) -> Returned:
    def make(
        name: str, subscriber: Subscriber | int, campaign_id: int | None = None, **kw: object
    ) -> bytes:
        if isinstance(subscriber, Subscriber):
            kw["link_key"] = subscriber.link_key
            subscriber = subscriber.id
        return fill(name, subscriber, campaign_id, tokens=tokens, **kw)  # type: ignore[arg-type]

    return make
