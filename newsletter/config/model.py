"""``Config``: every section of ``newsletter.yaml`` together, the checks across sections,
the values derived from them, and the rules that read the whole config."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from newsletter.config.automations import AutomationSettings
from newsletter.config.fields import (
    BaseUrl,
    EmailAddress,
    Greeting,
    OneLine,
    Schema,
    SegmentName,
    SegmentText,
    Slug,
    TimeZone,
)
from newsletter.config.identity import Brand, Sender, SocialLink, Topic
from newsletter.config.providers import (
    BouncesSettings,
    MailboxSettings,
    MailgunSettings,
    OutboxSettings,
    PostmarkSettings,
    SendGridSettings,
    SesSettings,
    SmtpSettings,
)
from newsletter.config.sending import AbSettings, SendingSettings, TrackingSettings
from newsletter.config.subscribers import ImportSettings, WebSettings
from newsletter.segments.language import parse, unknown_topic

DATABASE_URL_ENV = "NEWSLETTER_DATABASE_URL"


class Config(Schema):
    name: OneLine = Field(description="The newsletter's name, in the header and footer.")
    description: str = Field("", description="Who we are, for the footer of every issue.")
    language: str = Field(
        "en",
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$",
        description="The language of every word a reader sees in mail and pages, and of "
        "their dates: a shipped one (docs/languages.md; an issue's front matter can set its "
        "own), or another code with every message given in strings:.",
    )
    strings: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Your own words for any message of the catalog, keyed by its English "
        "text (docs/languages.md lists them), as in {'Unsubscribe': 'Leave the list'}.",
    )
    sender: Sender = Field(alias="from", description="The From address and name.")
    reply_to: EmailAddress | None = Field(None, description="Where replies go.")
    site_url: BaseUrl = Field(
        description="Where the subscriber web app and the archive live; links in mail point there."
    )
    assets_url: BaseUrl | None = Field(
        None, description="Where images are hosted; default site_url + /assets."
    )
    postal_address: str = Field(
        min_length=1, description="A valid postal address, in every message (CAN-SPAM)."
    )
    list_id: str | None = Field(None, description="List-Id header; default from the site domain.")
    unsubscribe_mailto: EmailAddress | None = Field(
        None, description="Address for the mailto: List-Unsubscribe alternative."
    )
    hashtag: str = Field("", description="The community hashtag, shown in the footer.")
    greeting: Greeting | None = Field(
        None,
        description="The line each issue opens with; {first_name} is the reader's first name "
        "(titles such as Dr skipped; 'there' when unknown, in the language's words). "
        "Default: the language's own ('Hi {first_name},'). false: no greeting. An issue's "
        "front matter can set its own.",
    )
    topics: list[Topic] = Field(
        default_factory=list, description="What subscribers can choose to receive."
    )
    brand: Brand = Field(default_factory=Brand, description="Logo, colours and fonts.")
    social: list[SocialLink] = Field(
        default_factory=list, description="Profile links for the footer."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default a SQLite file newsletter.db beside this file."
    )
    provider: Literal["outbox", "smtp", "sendgrid", "postmark", "mailgun", "ses"] = Field(
        "outbox", description="How `newsletter send` delivers."
    )
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="Local Maildir.")
    sendgrid: SendGridSettings = Field(default_factory=SendGridSettings, description="SendGrid.")
    postmark: PostmarkSettings = Field(default_factory=PostmarkSettings, description="Postmark.")
    mailgun: MailgunSettings = Field(default_factory=MailgunSettings, description="Mailgun.")
    ses: SesSettings = Field(default_factory=SesSettings, description="Amazon SES (v2 API).")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP server.")
    sending: SendingSettings = Field(
        default_factory=SendingSettings, description="Batches and rate limits."
    )
    web: WebSettings = Field(default_factory=WebSettings, description="The subscriber web app.")
    imports: ImportSettings = Field(
        default_factory=ImportSettings,
        description="`subscribers import` of other services' exports.",
    )
    bounces: BouncesSettings = Field(
        default_factory=BouncesSettings, description="The return path for bounces (VERP)."
    )
    mailbox: MailboxSettings = Field(
        default_factory=MailboxSettings, description="The mailbox 'newsletter mailbox' reads."
    )

    timezone: TimeZone = Field(
        "UTC", description="The editor's time zone: for send --at, send_at and schedules."
    )
    tracking: TrackingSettings = Field(
        default_factory=TrackingSettings,
        description="First-party click (and open) counting, off by default.",
    )
    automations: dict[Slug, AutomationSettings] = Field(
        default_factory=dict,
        description="Mail that goes out on its own, by name: sequences of steps after "
        "signup (welcome mails) and RSS-to-email digests. See docs/automations.md.",
    )
    ab: AbSettings = Field(
        default_factory=AbSettings,
        description="Subject tests (an issue's subject_variants:): the sample, the wait "
        "and the metric; an issue's front matter ab: overrides any of them.",
    )
    segments: dict[SegmentName, SegmentText] = Field(
        default_factory=dict,
        description="Saved segments by name, as in {uk: 'attributes.country == \"GB\"'}: "
        "for send --segment, an issue's segment: and subscribers list/count --segment. "
        "The language: docs/segments.md.",
    )

    # Where the config file lives; every relative path is resolved against it.
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _topics_unique(self) -> Config:
        seen: set[str] = set()
        for topic in self.topics:
            if topic.id in seen:
                raise ValueError(f"topics: duplicate id {topic.id!r}")
            seen.add(topic.id)
        for name, text in self.segments.items():
            unknown = unknown_topic(parse(text), sorted(seen))
            if unknown is not None:
                wanted, position = unknown
                raise ValueError(
                    f"segments.{name}: position {position}: unknown topic {wanted!r}; use one "
                    "of the ids under topics:"
                )
        for name, automation in self.automations.items():
            for wanted in automation.topics:
                if wanted not in seen:
                    raise ValueError(
                        f"automations.{name}.topics: unknown topic {wanted!r}; use one of "
                        "the ids under topics:"
                    )
        return self

    # Derived values: computed here, so every consumer agrees on them.

    @property
    def provider_tracking(self) -> frozenset[str]:
        """The providers whose own open and click tracking is on (``sendgrid.tracking``,
        ``postmark.tracking``, ``mailgun.tracking``, ``ses.tracking``): their webhooks'
        opens and clicks are counted."""
        settings = {
            "sendgrid": self.sendgrid.tracking,
            "postmark": self.postmark.tracking,
            "mailgun": self.mailgun.tracking,
            "ses": self.ses.tracking,
        }
        return frozenset(name for name, on in settings.items() if on)

    @property
    def assets_base_url(self) -> str:
        return self.assets_url or f"{self.site_url}/assets"

    @property
    def list_id_header(self) -> str:
        if self.list_id:
            return self.list_id
        host = urlsplit(self.site_url).hostname or "localhost"
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "newsletter"
        return f"{self.name} <{slug}.{host}>"

    @property
    def topic_ids(self) -> list[str]:
        return [topic.id for topic in self.topics]

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def outbox_dir(self) -> Path:
        return self.root / self.outbox.path

    @property
    def database(self) -> str:
        """The SQLAlchemy URL: environment first, then config, then a file beside the config."""
        url = os.environ.get(DATABASE_URL_ENV) or self.database_url
        if not url:
            return f"sqlite:///{(self.root / 'newsletter.db').resolve()}"
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url.removeprefix("sqlite:///")
            # file: URIs (sqlite:///file:path?mode=ro&uri=true) are SQLite's own, as given.
            if relative and relative != ":memory:" and not relative.startswith("file:"):
                return f"sqlite:///{(self.root / relative).resolve()}"
        return url


def ab_settings(config: Config, overrides: Iterable[tuple[str, object]] = ()) -> AbSettings:
    """An issue's subject test settings: its front matter's ``ab:`` over the config's."""
    return AbSettings.model_validate({**config.ab.model_dump(), **dict(overrides)})


def missing_measure(config: Config, provider: str, metric: str) -> str | None:
    """Why a subject test by ``metric`` cannot be decided when sent through
    ``provider`` (nothing records which reader clicked or opened); None when it can.
    ``check`` reports it and ``send`` refuses with it."""
    tracking = config.tracking
    counted = tracking.clicks if metric == "clicks" else tracking.opens
    if (counted and tracking.per_subscriber) or provider in config.provider_tracking:
        return None
    verb = "clicked" if metric == "clicks" else "opened"
    if provider in ("sendgrid", "postmark", "mailgun", "ses"):
        theirs = f"{provider}'s own tracking ({provider}.tracking: true) and its webhook"
    else:  # the outbox and SMTP track nothing themselves
        theirs = (
            "a provider that tracks (sendgrid, postmark, mailgun or ses, with its "
            "tracking: true and its webhook)"
        )
    return (
        f"a subject test by {metric} needs to know which reader {verb}, and nothing "
        f"records it: turn on first-party tracking (tracking.{metric}: true and "
        f"tracking.per_subscriber: true in newsletter.yaml), or send through {theirs}"
    )
