"""Return tokens already in mailboxes keep matching: the sender's signing is the formula
they were made with, byte for byte, whatever shortcuts it takes."""

from __future__ import annotations

import hashlib
import hmac
import random
from base64 import b32encode

from newsletter.send.return_tokens import ReturnClaim, ReturnTokens
from newsletter.store.schema import new_link_key

SECRET = "a-secret-that-is-long-enough-0123456789"


def reference_token(
    purpose: str, subscriber_id: int, link_key: str, campaign_id: int | None
) -> str:
    """The token as first defined: ``<id>-<campaign>-<HMAC-SHA256, 80 bits, base32>``."""
    key = hashlib.sha256(f"newsletter.{purpose}\0{SECRET}".encode()).digest()
    payload = f"{subscriber_id}-{campaign_id or 0}"
    mac = hmac.new(key, f"{payload}\0{link_key}".encode(), hashlib.sha256).digest()
    return f"{payload}-{b32encode(mac[:10]).decode().lower()}"


def test_return_tokens_are_the_formula_they_were_first_made_with() -> None:
    tokens = ReturnTokens(SECRET)
    rng = random.Random(11)
    ids = [0, 1, 7, 1000, 10**18 - 1]
    ids += [rng.randint(1, 10 ** rng.randint(1, 18)) for _ in range(3000)]

    for subscriber_id in ids:
        campaign_id = rng.choice([None, 0, rng.randint(1, 10 ** rng.randint(1, 12))])
        key = rng.choice([new_link_key(), "x" * 16, "sample"])
        bounce = reference_token("bounce", subscriber_id, key, campaign_id)
        mailto = reference_token("mailto", subscriber_id, key, campaign_id)

        assert tokens.envelope_sender("bounces@example.org", subscriber_id, key, campaign_id) == (
            f"bounces+{bounce}@example.org"
        )
        assert tokens.mailto_subject(subscriber_id, key, campaign_id) == f"unsubscribe {mailto}"
        claim = tokens.read_mailto(f"unsubscribe {mailto}", {subscriber_id: key}.get)
        assert claim == ReturnClaim(subscriber_id, campaign_id or None)
