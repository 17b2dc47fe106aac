"""Headers and message composition (newsletter.mail)."""

from __future__ import annotations

import email
import email.policy

import pytest

from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.mail import compose, list_headers, message_bytes, message_headers

LONG_URL = "https://news.breastfeedingworld.example/u/" + "A" * 150


def test_list_headers_follow_rfc_2369_and_8058(config: Config) -> None:
    assert list_headers(config, "https://news.breastfeedingworld.example/u/TOKEN") == {
        "List-Unsubscribe": "<https://news.breastfeedingworld.example/u/TOKEN>, "
        "<mailto:unsubscribe@breastfeedingworld.example?subject=unsubscribe>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>",
    }


def test_without_a_mailto_the_https_url_stands_alone(config: Config) -> None:
    config = config.model_copy(update={"unsubscribe_mailto": None})

    assert list_headers(config, "https://x.example/u/T")["List-Unsubscribe"] == (
        "<https://x.example/u/T>"
    )


def test_a_long_unsubscribe_url_survives_serialisation_unencoded(config: Config) -> None:
    headers = message_headers(
        config, to="ann@example.org", subject="Hello", unsubscribe_url=LONG_URL
    )
    data = message_bytes(headers, html="<p>Hi</p>", text="Hi")

    assert f"List-Unsubscribe: <{LONG_URL}>, <mailto:".encode() in data
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert str(parsed["List-Unsubscribe"]).startswith(f"<{LONG_URL}>")


def test_a_message_has_both_parts_and_every_header(config: Config) -> None:
    headers = message_headers(
        config,
        to="Zoë <zoe@example.org>",
        subject="Stem cells — and more",
        unsubscribe_url=LONG_URL,
    )
    data = message_bytes(headers, html="<p>Grüße</p>", text="Grüße")
    parsed = email.message_from_bytes(data, policy=email.policy.default)

    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Subject"] == "Stem cells — and more"
    assert str(parsed["From"]) == "Breastfeeding World <letters@breastfeedingworld.example>"
    assert parsed["Reply-To"] == "hello@breastfeedingworld.example"
    assert parsed["Message-ID"].endswith("@breastfeedingworld.example>")
    assert parsed["Date"]
    assert parsed.get_body(("plain",)).get_content() == "Grüße\n"
    assert parsed.get_body(("html",)).get_content() == "<p>Grüße</p>\n"
    assert max(len(line) for line in data.splitlines()) <= 998


@pytest.mark.parametrize("subject", ["Hello\r\nBcc: everyone@example.org", "Hello\nthere"])
def test_a_subject_with_a_line_break_cannot_inject_headers(config: Config, subject: str) -> None:
    with pytest.raises(SendError, match="the Subject header would contain a line break"):
        message_headers(config, to="ann@example.org", subject=subject)


def test_compose_reads_back_what_message_bytes_writes(config: Config) -> None:
    headers = message_headers(
        config,
        to='"Zoë Ünal" <zoe@example.org>',
        subject="Grüße aus Berlin",
        unsubscribe_url=LONG_URL,
    )
    text = "Line one  \r\n.starts with a dot\nlong " + "x" * 300 + "\n"

    message = compose(headers, html="<p>a=b</p>", text=text)

    assert message["Subject"] == "Grüße aus Berlin"
    assert message["To"].addresses[0].display_name == "Zoë Ünal"
    assert message.get_body(("plain",)).get_content() == text.replace("\r\n", "\n")
    assert message.get_body(("html",)).get_content() == "<p>a=b</p>\n"
