"""The hook every provider's is (:class:`Hook`), the secrets the apps are given, and
what the tests read back (:func:`figures`)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from newsletter.models import Subscriber
from newsletter.reports.figures import IssueReport
from newsletter.web.context import EXTENSION, Services

PROVIDERS = ("sendgrid", "postmark", "mailgun", "ses")  # test_webhook_contract.py's
POSTMARK_PASSWORD = "postmark-webhook-password-for-tests"
MAILGUN_KEY = "mailgun-webhook-signing-key-for-tests"
SES_TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-events"


class Hook:
    """One provider's webhook on one app: ``post`` a record as the provider would,
    ``forge`` one as a stranger would, and the records every provider has. Each builder
    takes the reader, the campaign id or None, and a number (the same number: the same
    record, as the provider's retry)."""

    name = ""
    refused = 403  # the answer to a request whose credentials or signature are wrong
    unreadable = 403  # the answer to a body that is not JSON, or nests too deep

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()

    @property
    def site(self) -> Services:
        services: Services = self.app.extensions[EXTENSION]
        return services

    def post(self, record: Any) -> TestResponse:
        raise NotImplementedError

    def forge(self, record: Any) -> TestResponse:
        """Post ``record`` with credentials or a signature that are not the provider's."""
        raise NotImplementedError

    def bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        """A permanent bounce: the address does not exist."""
        raise NotImplementedError

    def soft_bounce(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any:  # fmt: skip
        raise NotImplementedError

    def blocked(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1) -> Any:
        """A refusal of the content or the sender, not of the address."""
        raise NotImplementedError

    def complaint(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                  ) -> Any:  # fmt: skip
        raise NotImplementedError

    def unsubscribe(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                    ) -> Any | None:  # fmt: skip
        """The provider's unsubscribe record; None where it has none (SES)."""
        return None

    def delivery(self, reader: Subscriber, campaign_id: int | None = None, number: int = 1
                 ) -> Any:  # fmt: skip
        raise NotImplementedError

    def open(self, reader: Subscriber, campaign_id: int | None, number: int) -> Any:
        raise NotImplementedError

    def click(self, reader: Subscriber, campaign_id: int | None, number: int, url: str) -> Any:
        raise NotImplementedError


def figures(issue: IssueReport) -> tuple[Any, ...]:
    """A report's engagement figures of an issue: opens, readers who opened, clicks,
    readers who clicked, the top links with their clicks."""
    return (
        issue.opens,
        issue.unique_opens,
        issue.clicks,
        issue.unique_clicks,
        [(link.url, link.clicks) for link in issue.top_links],
    )


def tags(reader: Subscriber, campaign_id: int | None) -> dict[str, str]:
    tags = {"subscriber_id": str(reader.id)}
    if campaign_id is not None:
        tags["campaign_id"] = str(campaign_id)
    return tags
