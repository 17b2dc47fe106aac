"""Providers: the one place mail leaves the program.

A provider takes a :class:`Batch` (content shared by every recipient, with the
personalisation markers still in it, plus one :class:`Recipient` each) and answers
with one :class:`Delivery` per recipient, in order. Outbox and SMTP fill the markers
locally (:meth:`Content.personalize`); SendGrid sends the shared content once per
request and lets its substitutions fill them. Each provider is one module, registered
here by name and imported only when used (so ``sendgrid`` is imported only by
``providers/sendgrid.py``, and only when someone sends through it).

Providers that hand over one message at a time (outbox, SMTP: ``per_message = True``)
report each message to a :class:`DeliveryLog` as it happens: :meth:`DeliveryLog.starting`
just before the message leaves (the log may say "leave this one out": the reader
unsubscribed meanwhile), :meth:`DeliveryLog.finished` with its outcome right after. The
campaign writes both to the ledger, so a crash leaves at most the one message on the
wire of each connection ``unknown``; everything before it is ``sent`` (or ``failed``)
and everything after it still ``pending``. A provider that sends a batch in one request
(SendGrid) never calls the log: its batch is handed over and recorded as a whole.

A provider raises :class:`~newsletter.errors.ProviderError` when it refuses the whole
batch for good (bad request, bad credentials) and
:class:`~newsletter.errors.ProviderUnavailable` when its retries ran out; a refusal for
one recipient is a ``failed`` delivery, not an exception.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from html import escape
from types import TracebackType
from typing import Literal, Protocol

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import GREETING_FALLBACK, Personalization
from newsletter.render.compile import marker
from newsletter.render.mail import format_address, message_bytes, new_message_id, safe_header
from newsletter.render.personalize import fill, split_markers
from newsletter.send.ratelimit import RateLimiter


@dataclass(frozen=True)
class Content:
    """What every recipient of a batch shares: markers not yet filled.

    ``headers`` are the shared headers beyond From/Reply-To/To/Subject (``List-Id``,
    ``List-Unsubscribe-Post``); per-recipient headers travel on the :class:`Recipient`.
    """

    sender: str  # the From header, display name included
    sender_email: str  # the bare address, for the SMTP envelope and SendGrid's "from"
    sender_name: str
    subject: str
    html: str
    text: str
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # One message on request (a confirmation link), not list mail: no unsubscribe group.
    transactional: bool = False
    # The greeting's word for a reader without a name, in the language.
    greeting_fallback: str = GREETING_FALLBACK

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        subject: str,
        html: str,
        text: str,
        headers: Mapping[str, str] | None = None,
        transactional: bool = False,
    ) -> Content:
        """Content from the configured sender, with ``headers`` shared by every recipient."""
        return cls(
            sender=format_address(config.sender.email, config.sender.name),
            sender_email=config.sender.email,
            sender_name=config.sender.name,
            subject=safe_header("Subject", subject),
            html=html,
            text=text,
            reply_to=config.reply_to,
            headers=dict(headers or {}),
            transactional=transactional,
        )

    @functools.cached_property
    def _html_parts(self) -> list[str]:
        return split_markers(self.html)

    @functools.cached_property
    def _text_parts(self) -> list[str]:
        return split_markers(self.text)

    @property
    def html_fields(self) -> set[str]:
        """The personal fields whose ``[[html:FIELD]]`` markers appear in the HTML."""
        return set(self._html_parts[1::2])

    @property
    def text_fields(self) -> set[str]:
        return set(self._text_parts[1::2])

    def filled(self, values: Mapping[str, str]) -> Content:
        """This content with the markers of ``values`` filled for everyone at once: for
        fields that are the same for every recipient (the view-in-browser link)."""
        html, text = self.html, self.text
        for name, value in values.items():
            html = html.replace(marker("html", name), escape(value, quote=True))
            text = text.replace(marker("text", name), value)
        return dataclasses.replace(self, html=html, text=text)

    def values_for(self, personalization: Personalization) -> dict[str, str]:
        """One recipient's marker values, the greeting's fallback in this content's
        language: every provider asks here, so no reader is greeted in English by one."""
        return personalization.values(self.greeting_fallback)

    def personalize(self, values: Mapping[str, str]) -> tuple[str, str]:
        """This content's (html, text) for one recipient; HTML values are escaped here."""
        html_values = {name: escape(value, quote=True) for name, value in values.items()}
        return fill(self._html_parts, html_values), fill(self._text_parts, dict(values))


@dataclass(frozen=True, slots=True)
class Recipient:
    """One addressee of a batch: their values for the markers and their own headers.

    ``tags`` identify the message in the provider's events (SendGrid ``custom_args``:
    campaign and subscriber id), so a webhook can find the ledger row again.
    """

    personalization: Personalization
    headers: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # The SMTP envelope sender (MAIL FROM, where bounces go): the signed VERP address
    # when bounces.address is set; None means the From address.
    envelope_sender: str | None = None

    @property
    def email(self) -> str:
        return self.personalization.email

    @property
    def name(self) -> str:
        return self.personalization.name


@dataclass(frozen=True)
class Batch:
    content: Content
    recipients: Sequence[Recipient]


def local_message(content: Content, recipient: Recipient) -> tuple[str, bytes]:
    """One recipient's complete message, personalised here: (Message-ID, RFC 5322 bytes).

    For the providers that hand over finished messages (outbox, SMTP).
    """
    html, text = content.personalize(content.values_for(recipient.personalization))
    message_id = new_message_id(content.sender_email)
    headers = {"From": content.sender}
    if content.reply_to:
        headers["Reply-To"] = content.reply_to
    headers |= {
        "To": format_address(recipient.email, recipient.name),
        "Subject": content.subject,
        "Date": format_datetime(dt.datetime.now(dt.UTC)),
        "Message-ID": message_id,
        **content.headers,
        **recipient.headers,
    }
    return message_id, message_bytes(headers, html=html, text=text)


DeliveryStatus = Literal["sent", "failed", "deferred", "unknown", "skipped"]


@dataclass(frozen=True)
class Delivery:
    """What became of one recipient of a batch.

    ``sent``: the provider accepted the message. ``failed``: it refused this recipient
    for good (``bounced`` when the address does not exist). ``deferred``: it said "try
    later" until the retries ran out, or was never asked; the recipient stays ``pending``
    for the next run. ``unknown``: the connection broke after the message was handed
    over, so it may have been accepted. ``skipped``: never handed over because the
    :class:`DeliveryLog` said so (the reader unsubscribed after the batch was read).
    """

    status: DeliveryStatus
    message_id: str | None = None
    error: str | None = None
    bounced: bool = False


class DeliveryLog(Protocol):
    """Where a ``per_message`` provider reports each recipient of a batch as it goes.

    Called from the provider's worker threads (one per connection), possibly at once;
    each call returns only when what it reports is safe (committed), so the provider
    must not put the next message of that connection on the wire before.
    """

    def starting(self, index: int) -> bool:
        """Recipient ``index`` of the batch is about to be handed over. False: leave them
        out (report them as a ``skipped`` delivery, and do not call :meth:`finished`)."""
        ...

    def finished(self, index: int, delivery: Delivery) -> None:
        """What became of recipient ``index`` (after a True :meth:`starting`)."""
        ...


class NoLog:
    """The log of a send outside any campaign (test sends, transactional mail)."""

    def starting(self, index: int) -> bool:
        return True

    def finished(self, index: int, delivery: Delivery) -> None:
        pass


NO_LOG = NoLog()


class Provider(Protocol):
    name: str
    # The most recipients one send_batch call takes (SendGrid: personalizations/request).
    batch_size: int
    # True: send_batch reports every message to its DeliveryLog (see the module doc).
    per_message: bool
    # Told what the provider waits for (a retry after a 5xx, a 429's reset), as it starts.
    notify: Callable[[str], None]

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Provider: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class BaseProvider:
    """Context-manager plumbing shared by the providers."""

    name = "base"
    batch_size = 1000
    per_message = False

    def __init__(self, config: Config, limiter: RateLimiter) -> None:
        self.config = config
        self.limiter = limiter
        # Set by the caller to hear what a provider waits for (retries, back-off).
        self.notify: Callable[[str], None] = lambda message: None

    def notice(self, message: str) -> None:
        """Pass a notice on to whoever set :attr:`notify` (late-bound: set after init)."""
        self.notify(f"{self.name}: {message}")

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; a provider stays usable until this is called."""

    def __enter__(self) -> BaseProvider:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# name -> "module:Class"; imported on first use.
PROVIDERS: dict[str, str] = {
    "outbox": "newsletter.send.providers.outbox:OutboxProvider",
    "smtp": "newsletter.send.providers.smtp:SmtpProvider",
    "sendgrid": "newsletter.send.providers.sendgrid:SendGridProvider",
    "postmark": "newsletter.send.providers.postmark:PostmarkProvider",
    "mailgun": "newsletter.send.providers.mailgun:MailgunProvider",
    "ses": "newsletter.send.providers.ses:SesProvider",
}


def get_provider(
    config: Config, name: str | None = None, *, limiter: RateLimiter | None = None
) -> Provider:
    """The provider called ``name`` (default: ``config.provider``), ready to send."""
    name = name or config.provider
    try:
        module_name, class_name = PROVIDERS[name].split(":")
    except KeyError:
        raise ConfigError(
            f"provider {name!r} is unknown; use one of {', '.join(sorted(PROVIDERS))}"
        ) from None
    provider_class = getattr(importlib.import_module(module_name), class_name)
    provider: Provider = provider_class(config, limiter or RateLimiter())
    return provider
