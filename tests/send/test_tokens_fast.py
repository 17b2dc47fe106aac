"""The fast token path signs exactly what itsdangerous would, so the web app reads it."""

from __future__ import annotations

import random

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from newsletter.errors import TokenError
from newsletter.store.schema import new_link_key
from newsletter.tokens import LinkClaim, Signer, UnsubscribeClaim


@pytest.mark.slow
def test_fast_tokens_are_itsdangerous_tokens() -> None:
    signer = Signer("a-secret")
    unsubscribe = URLSafeSerializer("a-secret", salt="newsletter.unsubscribe")
    preferences = URLSafeSerializer("a-secret", salt="newsletter.preferences")
    rng = random.Random(5)
    ids = [0, 1, 7, 111, 1000, 1_000_000, 1_111_111_111, 1_111_111_111_111, 10**18, 2**63 - 1]
    ids += [rng.randint(0, 10 ** rng.randint(1, 19)) for _ in range(5000)]
    identical = 0

    for subscriber_id in ids:
        campaign_id = rng.choice([None, rng.randint(0, 10 ** rng.randint(1, 12))])
        key = new_link_key()
        for made, theirs, payload in (
            (
                signer.unsubscribe_token(subscriber_id, campaign_id, key),
                unsubscribe,
                [subscriber_id, campaign_id, key],
            ),
            (signer.preferences_token(subscriber_id, key), preferences, [subscriber_id, key]),
        ):
            assert theirs.loads(made) == payload
            reference = theirs.dumps(payload)
            # The same bytes, unless itsdangerous compressed the payload ("." first).
            assert made == reference or reference.startswith(".")
            identical += made == reference
        # One message's two tokens, signed at once, are the same two tokens.
        assert signer.message_tokens(subscriber_id, campaign_id, key) == (
            signer.unsubscribe_token(subscriber_id, campaign_id, key),
            signer.preferences_token(subscriber_id, key),
        )
        claim = signer.read_unsubscribe_token(signer.unsubscribe_token(subscriber_id, 3, key))
        assert (claim.subscriber_id, claim.campaign_id, claim.link_key) == (subscriber_id, 3, key)
    assert identical > 0.99 * 2 * len(ids)


def test_links_signed_before_link_keys_still_read() -> None:
    signer = Signer("a-secret")
    unsubscribe = URLSafeSerializer("a-secret", salt="newsletter.unsubscribe")
    preferences = URLSafeSerializer("a-secret", salt="newsletter.preferences")
    confirm = URLSafeTimedSerializer("a-secret", salt="newsletter.confirm")

    assert signer.read_unsubscribe_token(unsubscribe.dumps([12, 3])) == UnsubscribeClaim(12, 3)
    assert signer.read_preferences_token(preferences.dumps(12)) == LinkClaim(12, None)
    assert signer.read_confirm_token(confirm.dumps(12), max_age_seconds=60) == LinkClaim(12, None)
    with pytest.raises(TokenError):
        signer.read_preferences_token(preferences.dumps([12, "no key!"]))
