"""Policy blocks: a refusal of the message or of the sender, not of the address.

A receiving server that finds a message "likely unsolicited", fails it on DMARC, or
refuses the sending IP because a blocklist names it answers ``550 5.7.1 ...`` like a
server that has no such user answers ``550 5.1.1``. The first says nothing about the
reader's address: the same reader gets the next issue once the content, the
authentication or the IP is fixed. Suppressing them would lose reachable readers,
so such a refusal is ``blocked`` (counted per campaign, never a suppression), not a
hard bounce, and a temporary one (``4.7.x``, "deferred for reputation") is not a soft
bounce that counts toward ``bounces.soft_bounce_limit`` either.

Recognised from the words of the server's reply (the delivery status's
``Diagnostic-Code``, or the reply lines a non-standard bounce quotes), not from the
code alone: ``5.7.1`` also says "Unable to relay", which is about the address's domain.
"""

from __future__ import annotations

import re
from email.message import Message

# Content, reputation, authentication and blocklists: the sender's or the message's.
_POLICY_WORDS = re.compile(
    r"unsolicited|\bspam|junk mail|bulk mail|blocklist|blacklist|block list|black list|"
    r"\bblocked\b|\brbl\b|\bdnsbl\b|spamhaus|spamcop|barracuda|sorbs|dmarc|\bspf\b|\bdkim\b|"
    r"reputation|policy reasons|content (?:rejected|filter|policy)|message content|"
    r"listed (?:at|on|in|by)|not authorized to send|sender ip|sending ip|"
    r"client host [^.;]{0,80}rejected|\bphish|\bvirus|malware",
    re.IGNORECASE,
)
# Addressing and mailbox statuses (RFC 3463 X.1.x, X.2.x): about the address, whatever
# else the reply says ("mailbox blocked for inactivity" is the reader's mailbox).
_ADDRESS_STATUS = re.compile(r"\b[45]\.[12]\.\d{1,3}\b")
# A line that quotes an SMTP reply: a reply code, or an enhanced status code.
_REPLY_LINE = re.compile(r"\b[45]\d\d[ -]|\b[45]\.\d{1,3}\.\d{1,3}\b")
_TEXT_LIMIT = 20_000  # characters of a non-standard bounce's notice searched for reply lines


def is_policy_block(status: str, reply: str) -> bool:
    """Whether a failure with enhanced ``status`` (``5.7.1``, may be empty) and the
    server's ``reply`` text refuses the message or the sender, not the address."""
    if status[2:3] in ("1", "2") or _ADDRESS_STATUS.search(reply):
        return False
    return bool(_POLICY_WORDS.search(reply))


def quoted_replies(message: Message) -> str:
    """The SMTP reply lines a non-standard bounce quotes in its first text part."""
    for part in message.walk():
        if part.get_content_type() != "text/plain":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        text = payload[:_TEXT_LIMIT].decode("latin-1")
        return " ".join(line for line in text.splitlines() if _REPLY_LINE.search(line))
    return ""
