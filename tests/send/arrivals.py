"""Checks on messages as they arrive at a server, read with the stdlib email parser."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import EmailMessage

from newsletter.tokens import Signer, UnsubscribeClaim

UNSUBSCRIBE_HEADER = re.compile(
    r"<(?P<url>https://[^>]+/u/(?P<token>[^>]+))>, "
    # The mailto's subject carries the copy's signed token (newsletter.send.return_tokens).
    r"<mailto:[^>]+\?subject=unsubscribe(?:%20(?P<mailto>[0-9a-z-]+))?>"
)


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message; fails if either is missing."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def unsubscribe_claim(message: EmailMessage, signer: Signer) -> tuple[str, UnsubscribeClaim]:
    """The one-click URL of ``message``, checked against both parts and its token's claim.

    List-Unsubscribe has the RFC 2369 angle brackets with the HTTPS URL first and the
    mailto second, List-Unsubscribe-Post is RFC 8058's, and the same URL is in the text
    and (HTML-escaped, if it needed it) the HTML part.
    """
    header = str(message["List-Unsubscribe"])
    found = UNSUBSCRIBE_HEADER.fullmatch(header)
    assert found, f"List-Unsubscribe not in RFC 2369/8058 form: {header!r}"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"]
    text, html = parts(message)
    url = found["url"]
    assert url in text
    assert url in html
    return url, signer.read_unsubscribe_token(found["token"])


def check_copies(
    messages: Iterable[EmailMessage],
    signer: Signer,
    *,
    campaign_id: int,
    subscriber_ids: Iterable[int],
) -> None:
    """One personal copy for each subscriber: a distinct working unsubscribe URL each."""
    urls = set()
    claimed = []
    for message in messages:
        url, claim = unsubscribe_claim(message, signer)
        assert claim.campaign_id == campaign_id
        urls.add(url)
        claimed.append(claim.subscriber_id)
        text, html = parts(message)
        assert "[[" not in text and "[[" not in html, "a personalisation marker was left"
    assert sorted(claimed) == sorted(subscriber_ids)
    assert len(urls) == len(claimed)
