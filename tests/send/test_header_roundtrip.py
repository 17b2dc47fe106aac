"""Every header with someone's text in it reads back exactly as it was written.

A mail program that decodes a subject or a name must get the very characters the editor
or the reader typed: no space lost or doubled around RFC 2047 encoded words, encoded
words of at most 75 characters (RFC 2047 section 2), lines of at most 78 (RFC 5322
section 2.1.1). Checked with Python's own parser (``policy.default``) on random text.
"""

from __future__ import annotations

import email
import email.header
import email.parser
import email.policy
import re
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import Config, load_config
from newsletter.models import Personalization
from newsletter.render.header_lines import format_address
from newsletter.render.mail import message_bytes, message_headers, shared_list_headers
from newsletter.safe_text import first_control
from newsletter.send.providers import Batch, Content, Recipient, get_provider
from tests.conftest import ROOT
from tests.fakes.sendgrid import FakeSendGrid
from tests.fakes.smtp import FakeSmtp

ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=")
ADDRESS = "zoe@example.org"

# Any character a header may carry (control characters other than tab are refused, and
# lone surrogates are not text), with the pieces that broke folding before mixed in:
# runs of spaces, tabs, text that looks like an encoded word, quotes and address specials.
# One text draw per piece, so that 10,000 subjects and names are drawn in seconds.
_character = st.characters(exclude_categories=("Cs", "Cc"), include_characters=" \t")
_tricky = [" ", "  ", "\t", "=?", "?=", "=?utf-8?q?x?=", '"', "\\", ",", ";", "<", ">", "@", "("]
_piece = st.text(_character, max_size=40) | st.sampled_from(
    [*_tricky, ")", "Zürich", "東京", "über", "x" * 80, "😀", "\u200f"]
)
header_text = st.lists(_piece, max_size=10).map("".join)
# Issue 20: 10,000 random subjects and names, checked in batches of ten per example
# (what a Hypothesis example costs on its own is most of a header's check).
BATCH = 10
PROPERTY = settings(
    max_examples=10_000 // BATCH,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def example() -> Config:
    """The example newsletter's config, read once: the property test runs 10,000 times."""
    return load_config(ROOT / "newsletter.yaml")


def written_and_read(headers: dict[str, str]) -> tuple[str, email.message.EmailMessage]:
    data = message_bytes(headers, html="<p>Hi</p>", text="Hi")
    head = data.split(b"\n\n", 1)[0].decode("ascii")  # only ASCII goes on the wire
    # The headers as a mail program reads them; the body is not what is checked here.
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, email.message.EmailMessage)
    return head, parsed


def assert_within_limits(head: str) -> None:
    for word in ENCODED_WORD.findall(head):
        assert len(word) <= 75, word
    for line in head.splitlines():
        assert line.strip(), "a folded line holds more than whitespace"
        assert len(line) <= 998
        # 78 wherever there is a space to fold at (URLs and ids are never folded).
        if not line.startswith(("Message-ID:", "List-Unsubscribe:")):
            assert len(line) <= 78 or max(map(len, line.split())) > 60, line


def raw_value(head: str, name: str) -> str:
    """The header's value unfolded, still encoded."""
    unfolded = re.sub(r"\n(?=[ \t])", "", head)
    return next(line for line in unfolded.splitlines() if line.startswith(f"{name}: "))[
        len(name) + 2 :
    ]


def assert_display_name(
    head: str, parsed: email.message.EmailMessage, header: str, name: str
) -> None:
    """The name a mail client shows is ``name``. Python's address parser reads it exactly
    where it fits in one encoded word; a longer one is split into several, and RFC 2047
    (section 6.2) drops the space between two encoded words, which that parser keeps:
    there the standard's own decoder reads it."""
    (address,) = parsed[header].addresses
    if address.display_name != name:
        phrase = raw_value(head, header).rpartition(" <")[0]
        assert len(ENCODED_WORD.findall(phrase)) > 1, (address.display_name, phrase)
        assert str(email.header.make_header(email.header.decode_header(phrase))) == name


def test_the_reported_subject_keeps_its_spaces(config: Config) -> None:
    subject = "Zürich, Kraków und 東京 über"
    head, parsed = written_and_read(message_headers(config, to=ADDRESS, subject=subject))

    assert parsed["Subject"] == subject
    assert_within_limits(head)


def test_a_long_plain_subject_stays_readable_and_folds_at_its_spaces(config: Config) -> None:
    # Encoding plain ASCII costs spam score (rspamd's SUBJ_EXCESS_QP / _BASE64).
    subject = "Stem cells in breast milk: what the new study says, and what it does not say yet"
    head, parsed = written_and_read(message_headers(config, to=ADDRESS, subject=subject))

    assert "=?" not in head.split("Subject:")[1].split("\nDate:")[0]
    assert parsed["Subject"] == subject
    assert_within_limits(head)


@pytest.mark.slow  # 10,000 messages through the stdlib parser: about a minute under load
@pytest.mark.timeout(600)  # ten times that, and still not hung
@PROPERTY
@given(pairs=st.lists(st.tuples(header_text, header_text), min_size=BATCH, max_size=BATCH))
def test_subjects_and_names_read_back_exactly(
    example: Config, pairs: list[tuple[str, str]]
) -> None:
    for subject, name in pairs:
        assert_reads_back(example, subject, name)


def assert_reads_back(example: Config, subject: str, name: str) -> None:
    assert first_control(subject) is None and first_control(name) is None
    sender = example.sender.model_copy(update={"name": name})
    config = example.model_copy(update={"sender": sender})
    headers = message_headers(
        config,
        to=format_address(ADDRESS, name),
        subject=subject,
        unsubscribe_url="https://news.example.org/u/TOKEN",
    )

    head, parsed = written_and_read(headers)

    assert parsed["Subject"] == subject
    assert parsed["To"].addresses[0].addr_spec == ADDRESS
    # Whitespace in a display name is collapsed, as in every stored name.
    assert_display_name(head, parsed, "To", " ".join(name.split()))
    assert parsed["From"].addresses[0].addr_spec == config.sender.email
    assert_display_name(head, parsed, "From", " ".join(name.split()))
    assert_within_limits(head)


# Every path the headers take: the SMTP and outbox providers write the message here,
# SendGrid gets the subject and names as JSON and the other headers as data.

SUBJECT = "Zürich, Kraków und 東京 über  alles — Folge 12: Stammzellen in der Muttermilch"
NAMES = ["Smith, Anna", 'Zoë "Zo" Ünal-Çelik de la Fuente', "山田 太郎", "J. R. R. Tolkien"]


def _batch(config: Config) -> Batch:
    content = Content.from_config(
        config,
        subject=SUBJECT,
        html="<p>Hi</p>",
        text="Hi",
        headers=shared_list_headers(config, campaign="folge-12", topics=("research",)),
    )
    recipients = [
        Recipient(Personalization(email=f"reader{n}@example.org", name=name))
        for n, name in enumerate(NAMES)
    ]
    return Batch(content, recipients)


def _named(configure: Callable[..., Config], **settings: object) -> Config:
    return configure(
        name="Die Zürcher Post, Ausgabe Süd", **{"from": {"name": "Zürcher Post"}}, **settings
    )


def _assert_delivered(messages: list[email.message.EmailMessage]) -> None:
    assert len(messages) == len(NAMES)
    for message, name in zip(
        sorted(messages, key=lambda m: m["To"].addresses[0].addr_spec), NAMES, strict=True
    ):
        assert message["Subject"] == SUBJECT
        assert message["To"].addresses[0].display_name == name
        assert message["From"].addresses[0].display_name == "Zürcher Post"
        list_id = str(message["List-Id"])
        assert list_id.endswith(">") and "Die Zürcher Post, Ausgabe Süd" in list_id


def test_smtp_delivers_every_header_exactly(
    configure: Callable[..., Config], smtp_server: FakeSmtp
) -> None:
    config = _named(
        configure,
        provider="smtp",
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
    )

    with get_provider(config) as provider:
        provider.send_batch(_batch(config))

    _assert_delivered([arrival.message() for arrival in smtp_server.arrivals])
    for arrival in smtp_server.arrivals:
        assert_within_limits(arrival.data.split(b"\r\n\r\n")[0].decode("ascii").replace("\r", ""))


def test_the_outbox_writes_every_header_exactly(configure: Callable[..., Config]) -> None:
    config = _named(configure, provider="outbox")

    with get_provider(config) as provider:
        provider.send_batch(_batch(config))

    files = sorted((config.outbox_dir / "new").iterdir())
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files]
    _assert_delivered([m for m in parsed if isinstance(m, email.message.EmailMessage)])


def test_sendgrid_gets_encoded_headers_and_names_it_can_deliver(
    configure: Callable[..., Config], sendgrid: FakeSendGrid
) -> None:
    config = _named(configure, provider="sendgrid", sendgrid={"api_host": sendgrid.url})

    with get_provider(config) as provider:
        deliveries = provider.send_batch(_batch(config))

    assert {delivery.status for delivery in deliveries} == {"sent"}
    # A name with a comma is not dropped by SendGrid (its documented limitation).
    assert sendgrid.dropped == {}
    ((_, body),) = sendgrid.accepted
    assert body["subject"] == SUBJECT  # SendGrid encodes the subject and names itself
    assert body["from"]["name"] == "Zürcher Post"
    assert body["headers"]["List-Id"].isascii()
    _assert_delivered([message.message() for message in sendgrid.messages()])
