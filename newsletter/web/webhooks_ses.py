"""``POST /webhooks/ses``: Amazon SNS messages carrying SES's events, signature verified.

Nothing is acted on before three checks pass: the ``TopicArn`` is one of
``ses.sns_topic_arns`` (anyone can create a topic and subscribe this URL; only yours may
report on your readers; with none configured every request is refused, 403); the
``SigningCertURL`` is on ``https://sns.<the topic's region>.amazonaws.com/`` (or under
``ses.sns_url_prefix``, for tests); and the signature (``SignatureVersion`` 1: SHA1, 2:
SHA256, RSA PKCS#1 v1.5) over SNS's canonical string checks out with that certificate.
Certificates are fetched once and kept.

- ``SubscriptionConfirmation``: confirmed by fetching its ``SubscribeURL`` (which must
  be on the same SNS host), here, in answer to SNS's POST: nothing happens on a GET.
- ``Notification``: its ``Message`` is an SES event (event publishing: ``eventType``;
  identity notifications: ``notificationType``), one event per recipient it names:
  ``Bounce`` ``Permanent`` -> bounced, the message failed; a bounce of subtype
  ``ContentRejected`` or ``AttachmentRejected``, and ``Reject`` (SES found a virus) ->
  the message failed as blocked, nobody suppressed (``status`` and ``report`` count it);
  other bounces -> the message was accepted; ``Complaint`` -> complained (unless its
  feedback type is ``not-spam``); ``Delivery``/``Send`` -> the message was sent;
  ``Open`` and ``Click`` (the configuration set tracks them, and ``ses.tracking`` says to
  count them; ignored otherwise) -> counted for the campaign and the reader, a click
  with its ``link``.
  Applied through :class:`~newsletter.send.provider_events.EventProcessor` (a complaint is never
  downgraded; SNS's retry of a message is applied once, by its ``MessageId``).
- ``UnsubscribeConfirmation``: logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, Response, abort, request

from newsletter.config import SesSettings
from newsletter.send.webhook_event import ProviderEvent, provider_event
from newsletter.web.context import services
from newsletter.web.security import csrf_exempt

log = logging.getLogger(__name__)

blueprint = Blueprint("webhooks_ses", __name__)
SOURCE = "ses"
TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
MAX_CERTIFICATES = 32
FETCH_TIMEOUT = 10.0
_certificates: dict[str, x509.Certificate] = {}
_certificates_lock = threading.Lock()


# Bounce subtypes where the receiver refused the message's content, not the address:
# the copy fails as blocked (counted by status and report), nobody is suppressed.
CONTENT_REFUSALS = frozenset({"ContentRejected", "AttachmentRejected"})


@blueprint.post("/webhooks/ses")
@csrf_exempt
def ses() -> Response:
    settings = services().config.ses
    if not settings.sns_topic_arns:
        log.warning("refused an SNS message: no topic is trusted; set ses.sns_topic_arns")
        abort(403)
    try:
        message = json.loads(request.get_data(cache=False))
    except (ValueError, RecursionError):
        abort(403)
    if not isinstance(message, dict):
        abort(403)
    # The signed fields are strings; anything else (MessageAttributes) is not signed.
    message = {name: value for name, value in message.items() if isinstance(value, str)}
    topic = message.get("TopicArn", "")
    if topic not in settings.sns_topic_arns or not (found := TOPIC_ARN.fullmatch(topic)):
        abort(403)
    prefix = sns_prefix(settings, region=found[1])
    if not verify(message, prefix=prefix):
        abort(403)
    kind = message.get("Type")
    if kind == "SubscriptionConfirmation":
        return _confirm(message, prefix)
    if kind == "UnsubscribeConfirmation":
        log.warning("SNS unsubscribed this URL from %s", topic)
        return Response("ok\n", status=200, mimetype="text/plain")
    if kind != "Notification":
        abort(400)
    try:
        event = json.loads(message["Message"])
    except (ValueError, RecursionError):
        abort(400)
    if not isinstance(event, dict):
        abort(400)
    tally = services().events.apply(read_event(event, message["MessageId"]))
    log.info(
        "SES notification: %d applied, %d already seen, %d ignored",
        tally.applied,
        tally.duplicates,
        tally.ignored,
    )
    return Response("ok\n", status=200, mimetype="text/plain")


def sns_prefix(settings: SesSettings, *, region: str) -> str:
    """Where this topic's certificates and confirmation links may be."""
    if settings.sns_url_prefix:
        return settings.sns_url_prefix
    return f"https://sns.{region}.amazonaws.com/"


def _on_sns(url: str, prefix: str) -> bool:
    if not url.startswith(prefix):
        return False
    parts, allowed = urlsplit(url), urlsplit(prefix)
    return (parts.scheme, parts.netloc) == (allowed.scheme, allowed.netloc) and "@" not in url


def _confirm(message: Mapping[str, str], prefix: str) -> Response:
    url = message.get("SubscribeURL", "")
    if not _on_sns(url, prefix):
        abort(403)
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as answer:
            answer.read(65536)
    except OSError as error:
        log.warning("could not confirm the SNS subscription to %s: %s", message["TopicArn"], error)
        abort(502)  # SNS tries again
    log.info("confirmed the SNS subscription to %s", message["TopicArn"])
    return Response("confirmed\n", status=200, mimetype="text/plain")


def string_to_sign(message: Mapping[str, str]) -> str | None:
    """SNS's canonical form of a message: its fields in order, each name and value on a
    line of its own; None if a required field is missing."""
    kind = message.get("Type")
    fields = NOTIFICATION_FIELDS if kind == "Notification" else SUBSCRIPTION_FIELDS
    lines = []
    for name in fields:
        value = message.get(name)
        if value is None:
            if name == "Subject":
                continue
            return None
        lines += [name, value]
    return "\n".join(lines) + "\n"


def verify(message: Mapping[str, str], *, prefix: str) -> bool:
    url = message.get("SigningCertURL", "")
    version = message.get("SignatureVersion")
    algorithm: hashes.HashAlgorithm
    if version == "1":
        algorithm = hashes.SHA1()  # SNS signature version 1 is SHA1withRSA
    elif version == "2":
        algorithm = hashes.SHA256()
    else:
        return False
    canonical = string_to_sign(message)
    if canonical is None or not _on_sns(url, prefix) or not url.endswith(".pem"):
        return False
    certificate = _certificate(url)
    if certificate is None:
        return False
    now = dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return False
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    try:
        signature = base64.b64decode(message.get("Signature", ""), validate=True)
        key.verify(signature, canonical.encode(), padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def _certificate(url: str) -> x509.Certificate | None:
    with _certificates_lock:
        if url in _certificates:
            return _certificates[url]
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as answer:
            certificate = x509.load_pem_x509_certificate(answer.read(65536))
    except (OSError, ValueError) as error:
        log.warning("could not read the SNS signing certificate %s: %s", url, error)
        return None
    with _certificates_lock:
        if len(_certificates) >= MAX_CERTIFICATES:
            _certificates.clear()
        _certificates[url] = certificate
    return certificate


def read_event(event: Mapping[str, Any], sns_id: str) -> list[ProviderEvent]:
    """One event per recipient the SES event names (none if it changes nothing here)."""
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail") if isinstance(event.get("mail"), dict) else {}
    assert isinstance(mail, dict)
    tags = {
        name: values[0]
        for name, values in (mail.get("tags") or {}).items()
        if isinstance(values, list) and values and isinstance(values[0], str)
    } if isinstance(mail.get("tags"), dict) else {}  # fmt: skip
    message_id = mail.get("messageId")
    url: object = None
    recipients: Sequence[Any]
    if kind == "Bounce":
        bounce = event.get("bounce") if isinstance(event.get("bounce"), dict) else {}
        assert isinstance(bounce, dict)
        permanent = bounce.get("bounceType") == "Permanent"
        ledger_kind, status = ("bounce", "bounced") if permanent else ("deferred", None)
        if bounce.get("bounceSubType") in CONTENT_REFUSALS:
            ledger_kind, status = "blocked", None  # the content, not the address
        recipients = _addresses(bounce.get("bouncedRecipients"))
        reason = f"{bounce.get('bounceType')} {bounce.get('bounceSubType')}"
    elif kind == "Complaint":
        complaint = event.get("complaint") if isinstance(event.get("complaint"), dict) else {}
        assert isinstance(complaint, dict)
        if complaint.get("complaintFeedbackType") == "not-spam":
            return []
        ledger_kind, status = "delivered", "complained"
        recipients = _addresses(complaint.get("complainedRecipients"))
        reason = f"complaint {complaint.get('complaintFeedbackType') or ''}".strip()
    elif kind in ("Delivery", "Send"):
        ledger_kind, status = "delivered" if kind == "Delivery" else "processed", None
        recipients = [a for a in mail.get("destination") or [] if isinstance(a, str)]
        reason = kind.lower()
    elif kind == "Reject":  # SES found a virus in the message: a refusal of its content
        ledger_kind, status = "blocked", None
        recipients = [a for a in mail.get("destination") or [] if isinstance(a, str)]
        reason = "rejected by SES"
    elif kind in ("Open", "Click"):
        ledger_kind, status = kind.lower(), None
        recipients = [a for a in mail.get("destination") or [] if isinstance(a, str)]
        reason = kind.lower()
        click = event.get("click")
        url = click.get("link") if kind == "Click" and isinstance(click, dict) else None
    else:
        return []
    return [
        provider_event(
            SOURCE,
            event_id=f"{sns_id}:{number}",
            kind=ledger_kind,
            email=address,
            tags=tags,
            message_id=message_id,
            new_status=status,
            reason=reason,
            url=url,
        )
        for number, address in enumerate(recipients[:50])
    ]


def _addresses(recipients: object) -> list[str]:
    if not isinstance(recipients, list):
        return []
    return [
        item["emailAddress"]
        for item in recipients
        if isinstance(item, dict) and isinstance(item.get("emailAddress"), str)
    ]
