"""The fast token path signs exactly what itsdangerous would, so the web app reads it."""

from __future__ import annotations

import random

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from newsletter.errors import TokenError
from newsletter.store.schema import new_link_key
from newsletter.tokens import LinkClaim, Signer, UnsubscribeClaim


def test_fast_tokens_are_byte_for_byte_itsdangerous_tokens() -> None:
    signer = Signer("a-secret")
    unsubscribe = URLSafeSerializer("a-secret", salt="newsletter.unsubscribe")
    preferences = URLSafeSerializer("a-secret", salt="newsletter.preferences")
    rng = random.Random(5)
    ids = [0, 1, 7, 111, 1000, 1_000_000, 1_111_111_111, 10**18, 2**63 - 1]
    ids += [rng.randint(0, 10 ** rng.randint(1, 19)) for _ in range(5000)]

    for subscriber_id in ids:
        campaign_id = rng.choice([None, rng.randint(0, 10 ** rng.randint(1, 12))])
        key = new_link_key()
        assert signer.unsubscribe_token(subscriber_id, campaign_id, key) == unsubscribe.dumps(
            [subscriber_id, campaign_id, key]
        )
        assert signer.preferences_token(subscriber_id, key) == preferences.dumps(
            [subscriber_id, key]
        )
        claim = signer.read_unsubscribe_token(signer.unsubscribe_token(subscriber_id, 3, key))
        assert (claim.subscriber_id, claim.campaign_id, claim.link_key) == (subscriber_id, 3, key)


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
