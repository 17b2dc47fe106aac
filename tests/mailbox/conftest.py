"""Fixtures of the mailbox suite: real-looking returned mail, signed for test subscribers.

``returned(name, subscriber_id, campaign_id)`` is one of the messages in ``messages/``
(bounces as Postfix, Exim, Gmail and Microsoft send them, an abuse report, an
out-of-office, a mailto unsubscribe, a question) with its placeholders filled: ``{VERP}``
the signed return path of that subscriber's copy, ``{RCPT}`` their address,
``{MAILTO_SUBJECT}`` the signed mailto subject, ``{N}`` a unique number.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.return_tokens import ReturnTokens

MESSAGES = Path(__file__).parent / "messages"
SECRET = "test-secret-key-for-the-mailbox-tests-0123456789"
BOUNCE_ADDRESS = "bounces@breastfeedingworld.example"
_unique = itertools.count(1)

Returned = Callable[..., bytes]


def fill(
    name: str,
    subscriber_id: int,
    campaign_id: int | None,
    *,
    tokens: ReturnTokens,
    address: str | None = None,
    unique: int | None = None,
) -> bytes:
    text = (MESSAGES / f"{name}.eml").read_text(encoding="utf-8")
    values = {
        "{VERP}": tokens.envelope_sender(BOUNCE_ADDRESS, subscriber_id, campaign_id),
        "{RCPT}": address or f"reader{subscriber_id}@example.net",
        "{MAILTO_SUBJECT}": tokens.mailto_subject(subscriber_id, campaign_id),
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
    def make(name: str, subscriber_id: int, campaign_id: int | None = None, **kw: object) -> bytes:
        return fill(name, subscriber_id, campaign_id, tokens=tokens, **kw)  # type: ignore[arg-type]

    return make
