"""SendGrid's, Postmark's, Mailgun's and SES's webhooks, driven as each provider drives its
own.

A :class:`Hook` builds a provider's records in its documented shape (SendGrid's events,
Postmark's records, Mailgun's ``event-data``, SES's events inside signed SNS
notifications) and posts them to the real web app, authenticated as that provider
authenticates: SendGrid's ECDSA signature, Postmark's basic auth, Mailgun's HMAC over a
fresh timestamp and token, SNS's signature by the test's certificate
(:class:`tests.fakes.sns.FakeSns`). Every builder names the reader, the
campaign (or None) and a number that makes the record's own id; the same number again
is the same record, as a provider's retry sends it.

``make_hook(name, **settings)`` (a fixture in ``tests/web/conftest.py``) makes one over
an app whose ``<name>:`` settings are updated with ``settings`` (``tracking=True``).
SendGrid's (:class:`SendGridHook`) posts each record as a batch of one; its batches are
tests/web/test_webhook*.py's.
"""

from __future__ import annotations

from tests.web.hooks.base import (
    MAILGUN_KEY,
    POSTMARK_PASSWORD,
    PROVIDERS,
    SES_TOPIC,
    Hook,
    figures,
)
from tests.web.hooks.mailgun import MailgunHook
from tests.web.hooks.postmark import PostmarkHook
from tests.web.hooks.sendgrid import SendGridHook, post_to_sendgrid
from tests.web.hooks.ses import SesHook

__all__ = [
    "MAILGUN_KEY",
    "POSTMARK_PASSWORD",
    "PROVIDERS",
    "SES_TOPIC",
    "Hook",
    "MailgunHook",
    "PostmarkHook",
    "SendGridHook",
    "SesHook",
    "figures",
    "post_to_sendgrid",
]
