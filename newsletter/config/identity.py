"""What the newsletter is: who sends it (From), what readers can choose (topics), how it
looks (brand) and where else it lives (social links)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from newsletter.config.fields import Color, EmailAddress, HttpUrl, OneLine, Schema, Slug


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
