"""``newsletter.yaml``: a declared schema with every default in one place.

Loading validates everything and reports every problem at once, each as
``newsletter.yaml: key.path: what is wrong``. Secrets never live here: the config
names the environment variables that hold them (``*_env`` keys), and
:func:`env_secret` reads them.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import string
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from newsletter.errors import ConfigError, SegmentError
from newsletter.segments.language import FIELD_OPS, parse, unknown_topic

CONFIG_FILENAME = "newsletter.yaml"
SECRET_KEY_ENV = "NEWSLETTER_SECRET_KEY"
# Set to 1: the libraries' own code instead of the speed shortcuts over their internals.
LIBRARY_PATHS_ENV = "NEWSLETTER_LIBRARY_PATHS"
DATABASE_URL_ENV = "NEWSLETTER_DATABASE_URL"

# libyaml's loader where PyYAML was built with it: five times faster, same safe subset.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# The form nearly every From address has: an ASCII local part of letters, digits and
# . _ + - between them, and a domain of letter-digit-hyphen labels under an alphabetic
# top-level domain. email-validator accepts each such address and changes only the
# domain's case (tests/render/test_config.py checks this against it), so these skip
# importing it: compiling its Unicode tables costs a tenth of a `newsletter build`.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9]+(?:[._+-][A-Za-z0-9]+)*"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
# email-validator's SPECIAL_USE_DOMAIN_NAMES (a test keeps the two equal): never deliverable.
_SPECIAL_USE_DOMAINS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def _plain_address(value: str) -> str | None:
    """``value`` as email-validator would normalise it, if it has the plain form."""
    match = _PLAIN_ADDRESS.fullmatch(value)
    if match is None or len(value) > 254 or value.index("@") > 64:
        return None
    domain = match["domain"].lower()
    # "--" marks IDNA labels (xn--), which email-validator decodes: leave them to it.
    if "--" in domain or domain.rpartition(".")[2] in _SPECIAL_USE_DOMAINS:
        return None
    return f"{value[: match.start('domain')]}{domain}"


def _valid_address(value: str) -> str:
    plain = _plain_address(value)
    if plain is not None:
        return plain
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise ValueError(f"not a valid address ({error})") from None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL, like https://example.org")
    return value


def _base_url(value: str) -> str:
    return _http_url(value).rstrip("/")


def _color(value: str) -> str:
    if not re.fullmatch(r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}", value):
        raise ValueError("must be a hex colour like #b0416f")
    return value


def _time_zone(value: str) -> str:
    # A name from the IANA database, so a time like "2026-12-01 09:00" means one instant.
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return value


def _slug(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", value):
        raise ValueError("must be lowercase letters, digits, '-' or '_'")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be a single line")
    return value


# One label of a DNS name: letters, digits and inner hyphens.
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def dns_name(value: str) -> str:
    """``value`` in lowercase if it is a DNS name (a selector, a domain); ValueError if not."""
    if not re.fullmatch(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*", value) or len(value) > 253:
        raise ValueError(
            "must be a DNS name: letters, digits and hyphens in dot-separated labels, "
            "like s1 or example.org"
        )
    return value.lower()


EmailAddress = Annotated[str, AfterValidator(_valid_address)]
DnsName = Annotated[str, AfterValidator(dns_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
BaseUrl = Annotated[str, AfterValidator(_base_url)]  # no trailing slash: paths get appended
Color = Annotated[str, AfterValidator(_color)]
Slug = Annotated[str, AfterValidator(_slug)]


def _segment(value: str) -> str:
    try:
        parse(value)
    except SegmentError as error:
        raise ValueError(f"{error}; see docs/segments.md") from None
    return value


def _segment_name(value: str) -> str:
    if value.lower() in FIELD_OPS:
        raise ValueError(
            f"{value!r} is a field of the segment language; name the segment otherwise"
        )
    return _slug(value)


SegmentText = Annotated[str, AfterValidator(_segment)]
SegmentName = Annotated[str, AfterValidator(_segment_name)]
OneLine = Annotated[str, AfterValidator(_one_line)]


def _greeting(value: object) -> str | Literal[False]:
    if value is False:
        return False
    if not isinstance(value, str):
        raise ValueError("write a greeting line such as 'Hi {first_name},', or false for none")
    _one_line(value)
    try:
        fields = {field for _, field, _, _ in string.Formatter().parse(value) if field is not None}
    except ValueError:
        fields = {"?"}
    if not fields <= {"first_name"}:
        raise ValueError(
            "the only placeholder a greeting may hold is {first_name}, as in "
            "'Dear {first_name},'; write false for no greeting"
        )
    return value


# A greeting line such as "Hi {first_name},", or false for none.
Greeting = Annotated[str | Literal[False], PlainValidator(_greeting)]


class Schema(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    # defer_build: each model's validator is built when first used, not at import, so a
    # command pays only for the models it validates (the whole config: one schema build).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Sender(Schema):
    email: EmailAddress = Field(description="The From address; its domain must be authenticated.")
    name: OneLine = Field("", description="The From display name.")


class Topic(Schema):
    id: Slug = Field(description="Stable identifier used in issue files, CSVs and the database.")
    name: OneLine = Field(description="What subscribers see.")
    description: str = Field("", description="Shown on the signup form and preferences.")


class Brand(Schema):
    logo: str | None = Field(None, description="Logo image, a path relative to the project.")
    logo_alt: str = Field(
        "",
        description="Alt text of the logo. The logo links to site_url, so a link needs a "
        "name: empty means the newsletter's name.",
    )
    logo_width: int = Field(120, ge=16, le=600, description="Logo width in pixels.")
    primary_color: Color = "#9d3a63"
    dark_primary_color: Color | None = Field(
        None,
        description="Links and accents in dark mode; default: primary_color, lightened "
        "until it reads on the dark background (4.5:1).",
    )
    text_color: Color = "#222222"
    muted_color: Color = "#5f5f5f"
    background_color: Color = "#f4efe9"
    content_background_color: Color = "#ffffff"
    font_family: str = "Georgia, 'Times New Roman', serif"
    heading_font_family: str = "Helvetica, Arial, sans-serif"


SocialNetwork = Literal[
    "facebook",
    "instagram",
    "x",
    "twitter",
    "linkedin",
    "youtube",
    "pinterest",
    "mastodon",
    "bluesky",
    "tiktok",
    "web",
]


class SocialLink(Schema):
    network: SocialNetwork = Field(description="Which network (sets the default label).")
    url: HttpUrl = Field(description="The profile's URL.")
    label: str = Field("", description="Link text; defaults to the network's name.")


class OutboxSettings(Schema):
    path: str = Field("outbox", description="Maildir folder, relative to the project.")


class SendGridSettings(Schema):
    api_host: BaseUrl = Field("https://api.sendgrid.com", description="API base URL.")
    api_key_env: str = Field("SENDGRID_API_KEY", description="Variable holding the API key.")
    timeout: float = Field(10.0, gt=0, description="Seconds per HTTP request.")
    batch_size: int = Field(1000, ge=1, le=1000, description="Personalizations per request.")
    asm_group_id: int | None = Field(None, description="Unsubscribe group (optional).")
    tracking: bool = Field(False, description="Let SendGrid track opens and clicks.")
    categories: list[str] = Field(
        default_factory=list, max_length=10, description="Up to 10 SendGrid categories."
    )
    webhook_public_key_env: str = Field(
        "SENDGRID_WEBHOOK_PUBLIC_KEY", description="Variable holding the Event Webhook public key."
    )
    webhook_max_age: int = Field(600, gt=0, description="Seconds a webhook timestamp stays fresh.")
    dkim_selectors: list[DnsName] = Field(
        default_factory=lambda: ["s1", "s2"],
        description="The selectors of SendGrid's domain authentication: 'newsletter doctor' "
        "checks that <selector>._domainkey.<From domain> leads to SendGrid's keys.",
    )


class PostmarkSettings(Schema):
    api_url: BaseUrl = Field("https://api.postmarkapp.com", description="API base URL.")
    server_token_env: str = Field(
        "POSTMARK_SERVER_TOKEN", description="Variable holding the server's API token."
    )
    message_stream: str = Field(
        "broadcast",
        min_length=1,
        description="The message stream campaigns go out on (a Broadcast stream); "
        "confirmation mail uses transactional_stream.",
    )
    transactional_stream: str = Field(
        "outbound", min_length=1, description="The stream of confirmation and manage-link mail."
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per HTTP request.")
    batch_size: int = Field(500, ge=1, le=500, description="Messages per batch request.")
    tracking: bool = Field(False, description="Let Postmark track opens and clicks.")
    templates: bool = Field(
        True,
        description="Send a campaign through a template made of it for the run "
        "(/email/batchWithTemplates: each message only its reader's values; the template "
        "is deleted afterwards); false: each message the whole issue (/email/batch).",
    )
    dkim_selector: DnsName | None = Field(
        None,
        description="The DKIM selector on Postmark's DNS Settings page (a date and 'pm', "
        "like 20240101123456pm): 'newsletter doctor' checks its key.",
    )
    webhook_username: str = Field(
        "postmark", min_length=1, description="The user name of the webhook URL's basic auth."
    )
    webhook_password_env: str = Field(
        "POSTMARK_WEBHOOK_PASSWORD",
        description="Variable holding the password of the webhook URL's basic auth "
        "(https://USER:PASSWORD@your.site/webhooks/postmark).",
    )


class MailgunSettings(Schema):
    domain: DnsName | None = Field(
        None, description="The sending domain as set up in Mailgun (required for mailgun)."
    )
    region: Literal["us", "eu"] = Field(
        "us", description="Where the Mailgun account lives: us (api.mailgun.net) or eu."
    )
    api_url: BaseUrl | None = Field(
        None, description="API base URL; default the region's (https://api.eu.mailgun.net)."
    )
    api_key_env: str = Field("MAILGUN_API_KEY", description="Variable holding the API key.")
    dkim_selectors: list[DnsName] = Field(
        default_factory=lambda: ["pdk1", "pdk2"],
        description="The DKIM selectors of the Mailgun domain (pdk1, pdk2 with Automatic "
        "Sender Security; the one on Mailgun's DNS records page otherwise): 'newsletter "
        "doctor' checks them.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per HTTP request.")
    batch_size: int = Field(1000, ge=1, le=1000, description="Recipients per request.")
    tracking: bool = Field(False, description="Let Mailgun track opens and clicks.")
    webhook_signing_key_env: str = Field(
        "MAILGUN_WEBHOOK_SIGNING_KEY",
        description="Variable holding the HTTP webhook signing key (Mailgun: Webhooks).",
    )
    webhook_max_age: int = Field(600, gt=0, description="Seconds a webhook timestamp stays fresh.")

    @property
    def base_url(self) -> str:
        if self.api_url:
            return self.api_url
        return "https://api.eu.mailgun.net" if self.region == "eu" else "https://api.mailgun.net"


class SesSettings(Schema):
    region: str | None = Field(
        None,
        pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$",
        description="The AWS region of the SES account; default AWS_REGION or "
        "AWS_DEFAULT_REGION (credentials come from the usual AWS environment).",
    )
    configuration_set: str | None = Field(
        None,
        description="The configuration set whose event destination (SNS) publishes "
        "bounces, complaints and deliveries.",
    )
    connections: int = Field(4, ge=1, le=32, description="Parallel requests to SES.")
    dkim_tokens: list[DnsName] = Field(
        default_factory=list,
        description="The three Easy DKIM tokens of the SES identity (SES console, or 'aws "
        "sesv2 get-email-identity'): 'newsletter doctor' checks their CNAMEs.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per request.")
    rate_from_account: bool = Field(
        True,
        description="Send no faster than the account's maximum send rate (read from SES "
        "when sending starts); sending.rate applies when it is lower.",
    )
    sns_topic_arns: list[str] = Field(
        default_factory=list,
        description="The SNS topics whose notifications POST /webhooks/ses accepts "
        "(anyone can make a topic; only yours may report on your readers).",
    )
    sns_url_prefix: HttpUrl | None = Field(
        None,
        description="Where SNS signing certificates and subscription confirmations may "
        "come from; default https://sns.<the topic's region>.amazonaws.com/ (for tests).",
    )
    tracking: bool = Field(
        False,
        description="Count the opens and clicks SES reports (the configuration set tracks "
        "them once its event destination publishes Open and Click).",
    )


class DkimSettings(Schema):
    selector: DnsName = Field(
        description="The selector: the key is published at <selector>._domainkey.<domain>.",
    )
    domain: DnsName | None = Field(
        None,
        description="The signing domain (d=); default the From address's domain. DMARC "
        "wants it under the same registered domain as From.",
    )
    private_key_file: str | None = Field(
        None,
        description="PEM file of the RSA private key, relative to the project (made by "
        "'newsletter dkim keygen'); default: the key in the variable private_key_env.",
    )
    private_key_env: str = Field(
        "NEWSLETTER_DKIM_KEY",
        description="Variable holding the PEM private key when private_key_file is not set.",
    )


class SmtpSettings(Schema):
    host: str = Field("127.0.0.1", description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="Transport security."
    )
    username: str | None = Field(None, description="Login name, if the server needs one.")
    password_env: str = Field("SMTP_PASSWORD", description="Variable holding the password.")
    connections: int = Field(2, ge=1, le=32, description="Parallel SMTP connections.")
    timeout: float = Field(30.0, gt=0, description="Seconds per SMTP command.")
    ca_file: str | None = Field(
        None,
        description="PEM file of the CA that signed the server's certificate (a private CA); "
        "relative to the project. Default: the system's CAs.",
    )
    local_hostname: str | None = Field(
        None,
        description="The name given in EHLO; default this machine's fully qualified name, "
        "else the From domain. Receivers score a bare host name as spam.",
    )
    dkim: DkimSettings | None = Field(
        None,
        description="Sign every message with DKIM (relaxed/relaxed): selector, domain, "
        "private_key_file. Gmail and Yahoo want DKIM for bulk mail; 'newsletter doctor' "
        "checks the published key.",
    )


class BouncesSettings(Schema):
    address: EmailAddress | None = Field(
        None,
        description="Envelope sender (Return-Path) for bounces, e.g. bounces@example.org; "
        "each message goes out as bounces+<signed token>@example.org (VERP), so SMTP "
        "sending needs the relay to accept it and deliver it to the mailbox.",
    )
    soft_bounce_limit: int = Field(
        3,
        ge=1,
        description="Campaigns in a row that may soft-bounce (mailbox full, ...) before "
        "the subscriber is marked bounced.",
    )


class MailboxSettings(Schema):
    url: str | None = Field(
        None,
        description="Where bounces, complaints and mailto unsubscribes arrive: "
        "imaps://user@host/INBOX, imap://user@host/INBOX (STARTTLS), pop3s://user@host, "
        "maildir:PATH or mbox:PATH.",
    )
    password_env: str = Field(
        "MAILBOX_PASSWORD", description="Variable holding the mailbox password."
    )
    ca_file: str | None = Field(
        None,
        description="PEM file of a private CA for the mailbox server; relative to the project.",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds per mailbox command.")
    max_message_size: int = Field(
        5_000_000,
        ge=100_000,
        description="Bytes; a larger message is set aside (quarantine) unread.",
    )
    message_timeout: float = Field(
        2.0,
        gt=0,
        description="CPU seconds to read one message before it is set aside (quarantine).",
    )
    quarantine_folder: str | None = Field(
        None,
        min_length=1,
        description="Folder for the messages set aside (an IMAP folder, or a Maildir++ "
        "folder .NAME); unset: left in place, flagged.",
    )


class SendingSettings(Schema):
    rate: float | None = Field(None, gt=0, description="Messages per second (all connections).")
    per_hour: int | None = Field(None, gt=0, description="Cap per rolling hour.")
    per_day: int | None = Field(None, gt=0, description="Cap per rolling day.")
    batch_size: int = Field(
        500, ge=1, le=1000, description="Recipients per ledger batch (outbox, smtp)."
    )
    retries: int = Field(
        5, ge=0, le=20, description="Retries of a 'try later' answer before pausing."
    )
    retry_delay: float = Field(1.0, gt=0, description="Seconds before the first retry.")
    retry_max_delay: float = Field(60.0, gt=0, description="Longest wait between retries.")


class TrackingSettings(Schema):
    clicks: bool = Field(
        False,
        description="Count clicks first-party: links in mail point at site_url/c/<token>, "
        "which counts the click and redirects to the original address.",
    )
    opens: bool = Field(
        False, description="Count opens with a one-pixel image from site_url/o/<token>."
    )
    per_subscriber: bool = Field(
        False,
        description="Also keep who clicked which link (say so in your privacy notice); "
        "otherwise only counts per link and campaign are kept.",
    )


def _sample_percent(value: object) -> float:
    """``20%`` (or a plain number of percent) as a float; 0 and 100 leave no test."""
    text = str(value).strip() if isinstance(value, str | int | float) else ""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%?", text)
    if isinstance(value, bool) or match is None or not 0 < float(match[1]) < 100:
        raise ValueError(
            f"cannot read {value!r} as a sample; write a percentage of the audience "
            "above 0 and below 100, like '20%'"
        )
    return float(match[1])


_WAIT_UNITS = {
    "m": 60,
    "min": 60,
    "minutes": 60,
    "h": 3600,
    "hours": 3600,
    "d": 86400,
    "days": 86400,
}


def _wait(value: object) -> dt.timedelta:
    """``4h``, ``90m``, ``1d`` (or ``4 hours``) as a timedelta, a minute to 30 days."""
    if isinstance(value, dt.timedelta):
        wait = value
    else:
        match = re.fullmatch(r"(\d+)\s*([a-z]+)", str(value).strip().lower())
        unit = _WAIT_UNITS.get(match[2]) if match else None
        if match is None or unit is None or isinstance(value, bool):
            raise ValueError(
                f"cannot read {value!r} as a wait; write a number and m, h or d, like '4h'"
            )
        wait = dt.timedelta(seconds=int(match[1]) * unit)
    if not dt.timedelta(minutes=1) <= wait <= dt.timedelta(days=30):
        raise ValueError("the wait must be between 1 minute and 30 days, like '4h'")
    return wait


SamplePercent = Annotated[float, PlainValidator(_sample_percent)]
Wait = Annotated[dt.timedelta, PlainValidator(_wait)]
Metric = Literal["clicks", "opens"]


class AbSettings(Schema):
    """How a subject test runs (an issue's ``subject_variants:``): docs/subject-tests.md."""

    sample: SamplePercent = Field(
        "20%",
        validate_default=True,
        description="The share of the audience that gets the variants, split evenly and "
        "at random, like '20%'; the rest get the winner.",
    )
    wait: Wait = Field(
        "4h",
        validate_default=True,
        description="How long after the sample went out the winner is picked and sent to "
        "the rest (by 'newsletter run-due'), like '4h', '90m' or '1d'.",
    )
    metric: Metric = Field(
        "clicks",
        description="What makes a variant win: the share of its readers who "
        "clicked (clicks) or opened (opens), each reader once.",
    )
    min_events: int = Field(
        10,
        ge=1,
        description="Fewer readers than this who clicked (or opened) in the whole sample "
        "is too little to tell: the first variant is sent, and the report says why.",
    )


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


class AbOverrides(Schema):
    """An issue's own ``ab:``: any of the config's ``ab:`` keys, for this issue only."""

    sample: SamplePercent | None = None
    wait: Wait | None = None
    metric: Metric | None = None
    min_events: int | None = Field(None, ge=1)


class WebSettings(Schema):
    link_max_age_days: int = Field(7, ge=1, description="Lifetime of confirm and manage links.")
    consent_text: str | None = Field(
        None,
        description="The consent wording shown on the signup form and recorded with it; "
        "default: the language's own ('I agree to receive this newsletter by email. I can "
        "unsubscribe at any time.').",
    )
    mails_per_address_per_hour: int = Field(
        3,
        ge=1,
        description="Confirmation or manage-link mails one address may be sent per hour "
        "(stops anyone from flooding a stranger's inbox through the forms).",
    )
    forms_per_client_per_hour: int = Field(
        30, ge=1, description="Signup and manage-link requests one client IP may make per hour."
    )
    pending_signup_days: int = Field(
        30,
        ge=1,
        description="Signups from the form not confirmed within this many days are deleted "
        "with everything recorded about them.",
    )
    proxy_hops: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of 'newsletter serve' whose X-Forwarded-For "
        "and X-Forwarded-Proto to trust (0: the app faces clients directly).",
    )


class ImportSettings(Schema):
    topic_map: dict[str, str] = Field(
        default_factory=dict,
        description="Tags, labels and groups of another service's export (the value as "
        "written there) mapped to topic ids; mapping to '' drops the value on purpose.",
    )
    group_columns: list[str] = Field(
        default_factory=list,
        description="Columns of a Mailchimp export that hold interest groups, besides "
        "Interests, Groups, Topics and Lists.",
    )


class AutomationSettings(Schema):
    """One automation under ``automations:``, by its name (see docs/automations.md): a
    sequence (``path``) or an RSS-to-email digest (``feed``)."""

    path: str | None = Field(
        None,
        description="A sequence: the folder of its steps (Markdown files with 'after: 3 "
        "days' in their front matter), relative to the project, e.g. automations/welcome.",
    )
    feed: HttpUrl | None = Field(
        None,
        description="A digest: the RSS or Atom feed whose new posts become an issue.",
    )
    topics: list[Slug] = Field(
        default_factory=list,
        description="Sequence: only subscribers of any of these topics get its steps. "
        "Digest: the issue's topics. Empty: everyone.",
    )
    every: str = Field(
        "monday 9:00",
        description="Digest: when, in the config's timezone: a weekday or 'daily' and a "
        "time, e.g. 'monday 9:00' or 'daily 18:30'.",
    )
    min_items: int = Field(
        1, ge=1, description="Digest: no mail with fewer new posts; they wait for the next time."
    )
    approve: bool = Field(
        True,
        description="Digest: true: the issue is written to issues/ and held in the schedule "
        "for the editor to send; false: it is sent at once.",
    )

    @model_validator(mode="after")
    def _sequence_or_digest(self) -> AutomationSettings:
        if (self.path is None) == (self.feed is None):
            raise ValueError(
                "give either path (a sequence's folder of steps) or feed (a digest's RSS or "
                "Atom feed), not both or neither"
            )
        if self.path is not None:
            extra = sorted({"every", "min_items", "approve"} & self.model_fields_set)
            if extra:
                raise ValueError(f"{extra[0]}: only for a digest (feed:), not a sequence")
        else:
            parse_every(self.every)
        return self


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_every(value: str) -> tuple[int | None, dt.time]:
    """A digest's ``every:`` as (weekday, 0 = Monday, or None for daily; time of day);
    ValueError saying what to write."""
    match = re.fullmatch(
        rf"({'|'.join(WEEKDAYS)}|daily)\s+(\d{{1,2}}):(\d{{2}})", value.strip(), re.IGNORECASE
    )
    if match is None or int(match[2]) > 23 or int(match[3]) > 59:
        raise ValueError(
            f"every: cannot read {value!r}; write a weekday or 'daily' and a time, e.g. "
            "'monday 9:00'"
        )
    day = match[1].lower()
    return (None if day == "daily" else WEEKDAYS.index(day)), dt.time(int(match[2]), int(match[3]))


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

    timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
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


def env_secret(variable: str) -> str | None:
    """A secret from the environment; empty counts as unset."""
    return os.environ.get(variable) or None


def library_paths() -> bool:
    """True when ``NEWSLETTER_LIBRARY_PATHS`` is set (and not 0): the speed shortcuts that
    copy library internals are off, and the libraries do that work themselves (tokens:
    itsdangerous signs each one; Markdown: markdown-it-py's own link rule and URL
    normalisation). The output is the same (tested); the way back if a library release
    the shortcuts were not tested on changes what they copy."""
    return os.environ.get(LIBRARY_PATHS_ENV, "0").strip() not in ("", "0")


def find_config(start: Path | None = None) -> Path:
    """``newsletter.yaml`` in ``start`` (default: the current folder) or a folder above it."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILENAME} in {here} or any folder above it; "
        "run 'newsletter init' to create one, or pass --config"
    )


def load_yaml_mapping(path: Path, text: str, *, what: str) -> dict[str, Any]:
    """Parse YAML that must be a mapping; errors name the file and line."""
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"{path}{line}: {problem}; fix the YAML syntax on that line") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {what} must be a mapping of keys to values")
    return data


def describe_validation_error(error: ValidationError, label: str) -> list[str]:
    """Turn pydantic's errors into ``label: key.path: message`` lines."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        if item["type"] == "missing":
            message = "required; add this key"
        elif item["type"] == "extra_forbidden":
            message = "unknown key; check its spelling"
        elif item["type"] == "literal_error":
            message = f"must be one of {item['ctx']['expected']}"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"] and item["type"] == "value_error":
            lines.append(f"{label}: {message}")  # a check across keys names them itself
            continue
        lines.append(f"{label}: {path}: {message}")
    return lines


def load_config(path: Path | None = None) -> Config:
    """Load and validate ``newsletter.yaml``; every problem is reported at once."""
    path = path or find_config()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; run 'newsletter init' to create one") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    data = load_yaml_mapping(path, text, what="the config")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems = describe_validation_error(error, path.name)
        raise ConfigError("\n".join(problems), problems=problems) from None
    return config.model_copy(update={"root": path.parent.resolve()})
