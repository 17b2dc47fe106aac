"""Messages anyone may send to the return address to jam it (issue 20): nested deep,
built to make a regular expression slow, or simply huge."""

from __future__ import annotations

_HEAD = (
    "From: someone@example.com\r\nTo: bounces@breastfeedingworld.example\r\n"
    "Subject: {subject}\r\nMessage-ID: <{subject}@example.com>\r\nMIME-Version: 1.0\r\n"
)


def nested_messages(depth: int, subject: str = "deep-messages") -> bytes:
    """``depth`` message/rfc822 parts, each inside the one before (about 30 bytes each)."""
    head = _HEAD.format(subject=subject) + "Content-Type: message/rfc822\r\n\r\n"
    return (
        head + "Content-Type: message/rfc822\r\n\r\n" * depth + "Subject: x\r\n\r\nx\r\n"
    ).encode()


def nested_multiparts(depth: int, subject: str = "deep-multiparts") -> bytes:
    """``depth`` multipart/mixed parts, each the only part of the one before."""
    opening = "".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(depth)
    )
    closing = "".join(f"\r\n--b{n}--\r\n" for n in reversed(range(depth)))
    return (_HEAD.format(subject=subject) + opening + "\r\nx" + closing).encode()


def dashes_report(lines: int, subject: str = "dashes") -> bytes:
    """A multipart/report of ``lines`` lines of ``--a``: each looks like a boundary line
    that a part's headers could follow (quadratic for a pattern that tries each)."""
    head = _HEAD.format(subject=subject) + (
        'Content-Type: multipart/report; report-type=delivery-status; boundary="zz"\r\n\r\n'
    )
    return (head + "--zz\r\nContent-Type: text/plain\r\n\r\n" + "--a\r\n" * lines).encode()


def big_report(size: int, returned: bytes, subject: str = "big-report") -> bytes:
    """A bounce (``returned``, a multipart/report) with ``size`` bytes of text added
    to its human-readable part, as some servers write long transcripts."""
    marker = b"\r\n\r\n"
    head, _, body = returned.partition(marker)
    filler = b"".join(
        b"<reader@example.net>: host mx.example.net said: 550 transcript line %d\r\n" % n
        for n in range(size // 70)
    )
    notification = body.find(marker)  # the end of the first part's headers
    return head + marker + body[: notification + 4] + filler + body[notification + 4 :]
