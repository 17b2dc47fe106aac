"""The Headers view's values, for configs with and without the optional settings."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.preview.headers import message_headers
from newsletter.preview.recipients import Recipient
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.tokens import SAMPLE_LINK_KEY, Links, Signer, secret_or_development
from tests.conftest import SEED_ISSUE

RECIPIENT = Recipient(Personalization(email="jane@example.org", name="Doe, Jane"), "test")


def test_without_mailto_and_reply_to(config: Config, project: Path) -> None:
    plain = config.model_copy(update={"unsubscribe_mailto": None, "reply_to": None})
    compiled = compile_issue(read_issue(project / SEED_ISSUE, topics=plain.topic_ids), plain)

    headers = message_headers(plain, compiled=compiled, recipient=RECIPIENT)

    url = Links(plain, Signer(secret_or_development())).unsubscribe(0, SAMPLE_LINK_KEY, None)
    assert headers == [
        ("From", "Breastfeeding World <letters@breastfeedingworld.example>"),
        ("To", '"Doe, Jane" <jane@example.org>'),
        ("Subject", "Stem Cells: The Medicine in Breast Milk?"),
        ("List-Unsubscribe", f"<{url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("List-Id", "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>"),
        (
            "Feedback-ID",
            "stem-cells-in-breast-milk:research:breastfeeding-world:breastfeedingworld.example",
        ),
    ]
