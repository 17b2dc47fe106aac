"""How mail goes out and comes back: a section per provider (the outbox, SendGrid,
Postmark, Mailgun, Amazon SES, SMTP with its DKIM key), the return path for bounces and
the mailbox 'newsletter mailbox' reads."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from newsletter.config.fields import BaseUrl, DnsName, EmailAddress, HttpUrl, Schema


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
    return_path_domain: DnsName | None = Field(
        None,
        description="The custom Return-Path domain set up at Postmark (a subdomain of the "
        "From domain, like pm-bounces.example.org, a CNAME to pm.mtasv.net): 'newsletter "
        "doctor' checks its CNAME and counts it for DMARC's SPF alignment.",
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
    templates: bool = Field(
        True,
        description="Send a campaign with SendBulkEmail, 50 readers a request through a "
        "template of its content (deleted at the end); false: one raw SendEmail a reader.",
    )
    dkim_tokens: list[DnsName] = Field(
        default_factory=list,
        description="The three Easy DKIM tokens of the SES identity (SES console, or 'aws "
        "sesv2 get-email-identity'): 'newsletter doctor' checks their CNAMEs.",
    )
    mail_from_domain: DnsName | None = Field(
        None,
        description="The custom MAIL FROM domain of the SES identity (a subdomain of the "
        "From domain, like mail.example.org): 'newsletter doctor' checks its MX "
        "(feedback-smtp.<region>.amazonses.com) and SPF (include:amazonses.com) and counts "
        "it for DMARC's SPF alignment.",
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
