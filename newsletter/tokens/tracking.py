"""First-party click and open tracking (issue 15): the tokens of ``/c/`` links and the
``/o/`` pixel. Separate from :class:`~newsletter.tokens.signer.Signer`: own salts, so a
click token is never accepted as another kind."""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import URLSafeSerializer

from newsletter.config import library_paths
from newsletter.errors import TokenError
from newsletter.tokens.fast_dumps import FastDumps
from newsletter.tokens.signer import Signer


@dataclass(frozen=True)
class ClickClaim:
    campaign_id: int
    link: int  # the link's number in the campaign (campaign_links); -1: the open pixel
    subscriber_id: int | None  # from the reader's key, with tracking.per_subscriber


class TrackingSigner:
    """``/c/<token>`` (a link of a campaign), ``/c/<token>/<reader key>`` (the same,
    with ``tracking.per_subscriber``) and ``/o/<token>`` (its open pixel).

    The token names the campaign and the link's number, never the URL: the redirect
    target is looked up in the store, so a token cannot send anyone elsewhere.
    """

    OPEN = -1

    def __init__(self, secret: str, *, fast: bool | None = None) -> None:
        self._click = URLSafeSerializer(secret, salt="newsletter.click")
        self._reader = URLSafeSerializer(secret, salt="newsletter.click-reader")
        fast = not library_paths() if fast is None else fast
        self._fast_reader = FastDumps(self._reader, fast=fast)

    def reader_key(self, campaign_id: int, subscriber_id: int) -> str:
        """The reader's part of a tracked link (``tracking.per_subscriber``): names the
        campaign and subscriber, so a link forwarded to another campaign's reader is no
        use. Built for every recipient, so through the fast path."""
        campaign_id, subscriber_id = int(campaign_id), int(subscriber_id)
        return self._fast_reader.dumps(
            [campaign_id, subscriber_id], f"[{campaign_id},{subscriber_id}]"
        )

    def read_reader_key(self, key: str) -> tuple[int, int]:
        payload = Signer._load(self._reader, key)
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(part, int) for part in payload)
        ):
            raise TokenError("this link is not valid")
        return payload[0], payload[1]

    def click_token(self, campaign_id: int, link: int) -> str:
        return str(self._click.dumps([int(campaign_id), int(link)]))

    def read_click_token(self, token: str) -> ClickClaim:
        payload = Signer._load(self._click, token)
        if (
            not isinstance(payload, list)
            or len(payload) != 2
            or not all(isinstance(part, int) for part in payload)
        ):
            raise TokenError("this link is not valid")
        return ClickClaim(payload[0], payload[1], None)
