"""Providers: the one place mail leaves the program.

A provider takes a :class:`Batch` (content shared by every recipient, with the
personalisation markers still in it, plus one :class:`Recipient` each) and answers
with one :class:`Delivery` per recipient, in order. Outbox and SMTP fill the markers
locally (:meth:`Content.personalize`); SendGrid sends the shared content once per
request and lets its substitutions fill them. Each provider is one module, registered
here by name and imported only when used (so ``sendgrid`` is imported only by
``providers/sendgrid.py``, and only when someone sends through it).

Every provider tells its :class:`DeliveryLog` right before it puts recipients on the
wire, and only then: :meth:`DeliveryLog.starting` for one message (outbox, SMTP, SES's
raw messages), :meth:`DeliveryLog.starting_many` for a request that carries many
(SendGrid, Postmark, Mailgun, SES's ``SendBulkEmail``: one call a request, so the pace
counts its readers). The log first *waits* (the run's rate limit, and any back-off the
provider asks for with ``wait=``), then re-checks who is still subscribed and records
them as handed over, and answers who may go; the provider then calls its server at
once. So every wait happens while the recipients are still ``pending``: a kill or
Ctrl-C during one leaves nothing ``in_flight`` that the provider never saw. Providers
never sleep or pace themselves. A recipient the server did not take ("try later", a
5xx, a refused connection) goes back to ``pending`` *before* the provider waits to try
again: :meth:`DeliveryLog.finished` with a ``deferred`` delivery for one message,
:meth:`DeliveryLog.put_back` for a request. Per-message providers also report each
outcome right after it (:meth:`DeliveryLog.finished`), so a crash leaves at most the one
message on the wire of each connection ``unknown``; a request's outcome is recorded by
the campaign from what :meth:`Provider.send_batch` returns.

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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from types import TracebackType
from typing import Literal, Protocol

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.models import GREETING_FALLBACK, Personalization
from newsletter.render.compile import marker
from newsletter.render.header_lines import format_address, safe_header
from newsletter.render.mail import copy_headers, message_bytes, new_message_id
from newsletter.render.personalize import fill, split_markers


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
    headers = message_headers(content, recipient, message_id)
    return message_id, message_bytes(headers, html=html, text=text)


def message_headers(
    content: Content, recipient: Recipient, message_id: str, date: dt.datetime | None = None
) -> dict[str, str]:
    """Every header of ``recipient``'s copy, by the one rule (``render.mail.copy_headers``):
    what the outbox and SMTP write, and what the preview shows."""
    return copy_headers(
        sender=content.sender,
        reply_to=content.reply_to,
        to=format_address(recipient.email, recipient.name),
        subject=content.subject,
        message_id=message_id,
        date=date,
        own=recipient.headers,
        shared=content.headers,
    )


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
    """Where a provider hands recipients over, waits, and reports them.

    Called from the provider's worker threads (one per connection), possibly at once;
    each call returns only when what it reports is safe (committed), so the provider
    must not put the next message of that connection on the wire before. The waits
    happen inside :meth:`starting` and :meth:`starting_many`; they raise an exception
    the provider must let through when the run is stopped meanwhile (Ctrl-C).
    """

    def starting(self, index: int, wait: float = 0.0) -> bool:
        """Recipient ``index`` of the batch is about to be handed over: wait ``wait``
        seconds (a retry's back-off) and the run's pace, then hand them over. False:
        leave them out (report them as a ``skipped`` delivery, and do not call
        :meth:`finished`). Called again after a ``deferred`` :meth:`finished` to retry."""
        ...

    def finished(self, index: int, delivery: Delivery) -> None:
        """What became of recipient ``index`` (after a True :meth:`starting`). A
        ``deferred`` delivery puts them back to ``pending`` at once."""
        ...

    def starting_many(self, indexes: Sequence[int], wait: float = 0.0) -> list[int]:
        """Recipients ``indexes`` are about to go out in one request: wait ``wait`` seconds
        and the run's pace, then hand them over. Returns those still subscribed, in order;
        the rest are ``skipped`` deliveries. Their outcome is what ``send_batch`` returns."""
        ...

    def put_back(self, indexes: Sequence[int], reason: str) -> None:
        """The request of ``indexes`` was not taken (a 5xx, a 429, no connection): back to
        ``pending`` before the provider waits to try again with :meth:`starting_many`."""
        ...


class NoLog:
    """The log of a send outside any campaign (test sends, transactional mail): no pace,
    nothing to record; a back-off is slept here."""

    def starting(self, index: int, wait: float = 0.0) -> bool:
        if wait > 0:
            time.sleep(wait)
        return True

    def finished(self, index: int, delivery: Delivery) -> None:
        pass

    def starting_many(self, indexes: Sequence[int], wait: float = 0.0) -> list[int]:
        if wait > 0:
            time.sleep(wait)
        return list(indexes)

    def put_back(self, indexes: Sequence[int], reason: str) -> None:
        pass


NO_LOG = NoLog()


class Provider(Protocol):
    name: str
    # The most recipients one send_batch call takes (SendGrid: personalizations/request).
    batch_size: int
    # Told what the provider waits for (a retry after a 5xx, a 429's reset), as it starts.
    notify: Callable[[str], None]

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]: ...

    def max_rate(self) -> float | None:
        """The most messages a second the provider lets this account send, asked once
        before a campaign's first batch (the campaign paces itself no faster); None
        where it sets no such limit. May raise like :meth:`send_batch`."""
        ...

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

    def __init__(self, config: Config) -> None:
        self.config = config
        # Set by the caller to hear what a provider waits for (retries, back-off).
        self.notify: Callable[[str], None] = lambda message: None

    def notice(self, message: str) -> None:
        """Pass a notice on to whoever set :attr:`notify` (late-bound: set after init)."""
        self.notify(f"{self.name}: {message}")

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        raise NotImplementedError

    def max_rate(self) -> float | None:
        return None

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


def get_provider(config: Config, name: str | None = None) -> Provider:
    """The provider called ``name`` (default: ``config.provider``), ready to send. It
    keeps no pace of its own: a campaign's :class:`DeliveryLog` paces it."""
    name = name or config.provider
    try:
        module_name, class_name = PROVIDERS[name].split(":")
    except KeyError:
        raise ConfigError(
            f"provider {name!r} is unknown; use one of {', '.join(sorted(PROVIDERS))}"
        ) from None
    provider_class = getattr(importlib.import_module(module_name), class_name)
    provider: Provider = provider_class(config)
    return provider
