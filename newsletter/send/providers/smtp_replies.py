"""What an SMTP server's refusal is about: one recipient, or every message we send.

A refusal at RCPT usually means that one address (``550 5.1.1 User unknown``), and the
campaign goes on without it. But a relay that wants a login first (``554 5.7.1 Relay
access denied``), dislikes our EHLO name (``504 5.5.2 Helo command rejected``) or our
IP (``554 5.7.1 Client host rejected``) says so at RCPT as well, for every recipient:
failing them one by one would burn the whole campaign. Those stop it instead, leaving
everyone pending for a run after the fix.

RFC 3463's enhanced status codes say most of it: ``5.1.x`` addressing and ``5.2.x``
mailbox problems are the recipient's (except ``5.1.7``/``5.1.8``, the *sender's*
address); ``5.3.x`` (the mail system), ``5.5.x`` (the protocol, including HELO) and
``5.7.x`` (security and policy) are about us, unless the text says the policy is the
recipient's. Without an enhanced code the words of the reply decide.

Some relays say nothing about us in words: stock Postfix submission without a login
answers every RCPT with ``554 5.7.1 <x>: Recipient address rejected: Access denied``.
So a ``5.7.x`` refusal that reads as the recipient's, before the relay has accepted
anyone, is checked once more: the sender asks for its own address (the envelope
sender) in the same transaction, and if the relay refuses that with the same words
(:func:`same_refusal`), the refusal is everyone's and the campaign stops.
"""

from __future__ import annotations

import re
from typing import Literal

Scope = Literal["recipient", "relay"]

NO_SUCH_USER_CODES = frozenset({550, 551, 553})
_ENHANCED_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"<[^>]*>")
# Words of replies about the client, its login or its sender address, not the recipient.
_ABOUT_US = re.compile(
    r"relay|authenticat|auth\b|login|credential|sender|client|helo|ehlo|hostname|"
    r"\btls\b|starttls|encrypt|reverse|\bptr\b|\brdns\b|\bspf\b|dmarc|blocked|blacklist|"
    r"blocklist|spamhaus|not permitted to send|not allowed to send",
    re.IGNORECASE,
)


def enhanced_status(text: str) -> tuple[str, str, str] | None:
    """``("5", "1", "1")`` of a reply text that starts with an RFC 3463 code."""
    found = _ENHANCED_STATUS.match(text)
    return (found.group(1), found.group(2), found.group(3)) if found else None


def is_no_such_user(code: int, text: str) -> bool:
    """A permanent "this address does not exist" (not a policy or content refusal)."""
    if code not in NO_SUCH_USER_CODES:
        return False
    status = enhanced_status(text)
    return status is None or (status[1] == "1" and status[2] not in ("7", "8"))


def rcpt_refusal_scope(code: int, text: str) -> Scope:
    """Whether a refused RCPT is about that recipient or about us (every recipient)."""
    words = _ADDRESS.sub("", text)  # "<relay@example.org>: User unknown" is about a user
    status = enhanced_status(text)
    if status is not None:
        _, subject, detail = status
        if subject == "1":
            return "relay" if detail in ("7", "8") else "recipient"
        if subject in ("2", "4"):
            return "recipient"
        if subject in ("3", "5"):
            return "relay"
        if subject == "7":
            if _ABOUT_US.search(words):
                return "relay"
            return "recipient"
    if _ABOUT_US.search(words):
        return "relay"
    # 504 and 530 are protocol answers about our commands ("command parameter not
    # implemented", "authentication required"), never about one address.
    return "relay" if code in (503, 504, 530, 535) else "recipient"


def temporary_refusal_is_about_us(text: str) -> bool:
    """A 4xx that names the client, its login or its sender (``450 4.7.1 Client host
    rejected: cannot find your reverse hostname``): every message would wait the same.
    Only the words count here: a bare ``451 4.3.0 Try again later`` is one message's."""
    return bool(_ABOUT_US.search(_ADDRESS.sub("", text)))


def data_refusal_scope(code: int, text: str) -> Scope:
    """Whether a refused message (after DATA) is refused for that recipient only.

    Content refusals ("message looks like spam", "message too big") would refuse
    every copy of the issue: those stop the campaign (scope ``relay``).
    """
    status = enhanced_status(text)
    if status is not None:
        _, subject, detail = status
        if (subject == "1" and detail not in ("7", "8")) or (subject == "2" and detail != "3"):
            return "recipient"
    return "relay"


def is_policy_refusal(code: int, text: str) -> bool:
    """A permanent ``5.7.x`` (security or policy) refusal."""
    status = enhanced_status(text)
    return code >= 500 and status is not None and status[1] == "7"


def same_refusal(text: str, other_code: int, other_text: str) -> bool:
    """Whether ``other`` (the reply for another address) refuses with the same status and
    words as ``text``, the addresses aside."""
    if other_code < 500:
        return False
    return (
        enhanced_status(text) == enhanced_status(other_text)
        and _ADDRESS.sub("", text).strip() == _ADDRESS.sub("", other_text).strip()
    )
