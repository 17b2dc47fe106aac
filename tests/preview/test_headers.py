"""The Headers view's values, for configs with and without the optional settings."""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.preview.headers import message_headers

RECIPIENT = Personalization(
    email="jane@example.org", name="Doe, Jane", unsubscribe_url="https://x.example/u/TOKEN"
)


def test_without_mailto_and_reply_to(config: Config) -> None:
    plain = config.model_copy(update={"unsubscribe_mailto": None, "reply_to": None})

    headers = message_headers(plain, subject="Hello", recipient=RECIPIENT)

    assert headers == [
        ("From", "Breastfeeding World <letters@breastfeedingworld.example>"),
        ("To", '"Doe, Jane" <jane@example.org>'),
        ("Subject", "Hello"),
        ("List-Unsubscribe", "<https://x.example/u/TOKEN>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>"),
    ]
