"""The fast token path signs exactly what itsdangerous would, so the web app reads it."""

from __future__ import annotations

import random

from itsdangerous import URLSafeSerializer

from newsletter.tokens import Signer


def test_fast_tokens_are_byte_for_byte_itsdangerous_tokens() -> None:
    signer = Signer("a-secret")
    unsubscribe = URLSafeSerializer("a-secret", salt="newsletter.unsubscribe")
    preferences = URLSafeSerializer("a-secret", salt="newsletter.preferences")
    rng = random.Random(5)
    ids = [0, 1, 7, 111, 1000, 1_000_000, 1_111_111_111, 10**18, 2**63 - 1]
    ids += [rng.randint(0, 10 ** rng.randint(1, 19)) for _ in range(5000)]

    for subscriber_id in ids:
        campaign_id = rng.choice([None, rng.randint(0, 10 ** rng.randint(1, 12))])
        assert signer.unsubscribe_token(subscriber_id, campaign_id) == unsubscribe.dumps(
            [subscriber_id, campaign_id]
        )
        assert signer.preferences_token(subscriber_id) == preferences.dumps(subscriber_id)
        claim = signer.read_unsubscribe_token(signer.unsubscribe_token(subscriber_id, 3))
        assert (claim.subscriber_id, claim.campaign_id) == (subscriber_id, 3)
