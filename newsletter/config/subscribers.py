"""How readers arrive: the subscriber web app's limits (``web:``) and imports of other
services' exports (``imports:``)."""

from __future__ import annotations

from pydantic import Field

from newsletter.config.fields import Schema


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
