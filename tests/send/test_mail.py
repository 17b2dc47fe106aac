"""Headers and message composition (newsletter.render.mail)."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage

import pytest

from newsletter.config import Config
from newsletter.errors import SendError
from newsletter.render.header_lines import MAX_LINE, format_address
from newsletter.render.mail import (
    feedback_id,
    list_unsubscribe,
    message_bytes,
    message_headers,
    shared_list_headers,
)
from newsletter.send.copies import RecipientBuilder
from newsletter.send.ledger_batches import LedgerRecipient
from newsletter.tokens import Links, Signer

LONG_URL = "https://news.breastfeedingworld.example/u/" + "A" * 150


def list_headers(
    config: Config,
    unsubscribe_url: str,
    *,
    campaign: str,
    topics: tuple[str, ...],
    mailto_token: str | None = None,
) -> dict[str, str]:
    """The list headers of one reader's copy as a send writes them: their own
    List-Unsubscribe, then those every copy of the campaign shares."""
    return {
        "List-Unsubscribe": list_unsubscribe(config, unsubscribe_url, mailto_token),
        **shared_list_headers(config, campaign=campaign, topics=topics),
    }


def test_list_headers_follow_rfc_2369_and_8058(config: Config) -> None:
    headers = list_headers(
        config,
        "https://news.breastfeedingworld.example/u/TOKEN",
        campaign="winter",
        topics=("research", "events"),
        mailto_token="7-1-abc",
    )

    assert headers == {
        "List-Unsubscribe": "<https://news.breastfeedingworld.example/u/TOKEN>, "
        "<mailto:unsubscribe@breastfeedingworld.example?subject=unsubscribe%207-1-abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>",
        "Feedback-ID": "winter:events+research:breastfeeding-world:breastfeedingworld.example",
    }


def test_feedback_id_fields_hold_no_colon_space_or_junk_and_stay_short(config: Config) -> None:
    sender = config.sender.model_copy(update={"email": "x@Mail.Example.ORG"})
    odd = config.model_copy(update={"sender": sender, "list_id": "Ä List: <list:ö.example>"})

    value = feedback_id(odd, campaign="Über: alles " + "x" * 80, topics=())

    assert value.split(":") == ["ber-alles-" + "x" * 30, "all", "list", "mail.example.org"]


def test_without_a_mailto_the_https_url_stands_alone(config: Config) -> None:
    config = config.model_copy(update={"unsubscribe_mailto": None})

    headers = list_headers(config, "https://x.example/u/T", campaign="a", topics=())

    assert headers["List-Unsubscribe"] == "<https://x.example/u/T>"


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


def compose(headers: dict[str, str], *, html: str, text: str) -> EmailMessage:
    """What message_bytes writes, read back as a mail client would."""
    raw = message_bytes(headers, html=html, text=text)
    parsed = email.message_from_bytes(
        raw, policy=email.policy.default.clone(max_line_length=MAX_LINE)
    )
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_a_message_reads_back_as_message_bytes_wrote_it(config: Config) -> None:
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


def test_a_long_non_ascii_subject_is_folded_into_short_encoded_words(config: Config) -> None:
    subject = "Muttermilch — Stammzellen, Grüße und Überraschungen aus Berlin, Köln und Zürich"
    headers = message_headers(
        config, to="Zoë Ünal-Çelik de la Fuente <zoe@example.org>", subject=subject
    )

    data = message_bytes(headers, html="<p>Hi</p>", text="Hi")

    head = data.split(b"\n\n")[0].decode()
    encoded_words = re.findall(r"=\?[^?]+\?[qQbB]\?[^?]*\?=", head)
    assert encoded_words and max(len(word) for word in encoded_words) <= 75
    # Every line people read is folded (a Message-ID is one unbreakable token).
    assert max(len(line) for line in head.splitlines() if "Message-ID" not in line) <= 78
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["To"].addresses[0].display_name == "Zoë Ünal-Çelik de la Fuente"


@pytest.mark.parametrize("control", ["\x1b", "\x00", "\x7f", "\x9b"])
def test_a_subject_with_a_control_character_is_refused(config: Config, control: str) -> None:
    with pytest.raises(SendError, match=f"control character U\\+{ord(control):04X}"):
        message_headers(config, to="ann@example.org", subject=f"Hello{control}[2J")


def test_a_stored_name_with_control_characters_reaches_no_header(config: Config) -> None:
    build = RecipientBuilder(config, Links(config, Signer("k" * 32)), 7)

    recipient = build(LedgerRecipient(1, "eve@example.org", "Eve\x1b[2J\x00 Smith", "key"))
    headers = message_headers(
        config,
        to=format_address("eve@example.org", recipient.personalization.name),
        subject="Hello",
    )

    assert recipient.personalization.name == "Eve [2J Smith"
    assert "\x1b" not in headers["To"] and "\x00" not in headers["To"]
