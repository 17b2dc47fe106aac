"""Plain data types shared by every stage: the bottom of the import graph.

Nothing here imports from the rest of the package.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Author:
    name: str
    bio: str = ""
    image: str | None = None  # as written in the front matter; resolved by the renderer
    image_alt: str = ""


@dataclass(frozen=True)
class Image:
    src: str  # as written: an absolute URL or a path relative to the issue file
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class CallToAction:
    text: str
    url: str


@dataclass(frozen=True)
class TextBlock:
    """A run of headings, paragraphs, lists and quotes, in both renderings."""

    html: str
    text: str


@dataclass(frozen=True)
class ImageBlock:
    image: Image


@dataclass(frozen=True)
class ButtonBlock:
    text: str
    url: str


Block = TextBlock | ImageBlock | ButtonBlock


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int  # 1-based line in the issue file


@dataclass(frozen=True)
class Issue:
    """One issue file, read and validated, not yet rendered."""

    path: Path
    slug: str
    title: str
    subject: str
    preheader: str
    date: dt.date
    author: Author | None
    topics: tuple[str, ...]
    hero: Image | None
    cta: CallToAction | None
    blocks: tuple[Block, ...]
    headings: tuple[Heading, ...] = ()
    # Numbered link references of the plain-text part, in order: ``[1]`` is ``links[0]``.
    links: tuple[str, ...] = ()


# The per-recipient fields. The compiled message holds a marker for each, and
# personalisation replaces the markers; nothing else varies between recipients.
PERSONAL_FIELDS = (
    "name",
    "greeting_name",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_url",
)


@dataclass(frozen=True, slots=True)
class Personalization:
    """What differs between two recipients of the same issue."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""
    preferences_url: str = ""
    view_url: str = ""

    def values(self) -> dict[str, str]:
        return {
            "name": self.name,
            "greeting_name": self.name.split()[0] if self.name.strip() else "there",
            "email": self.email,
            "unsubscribe_url": self.unsubscribe_url,
            "preferences_url": self.preferences_url,
            "view_url": self.view_url,
        }


@dataclass(frozen=True)
class CompiledIssue:
    """An issue rendered once, with markers where each recipient's values go.

    ``html`` and ``text`` contain ``[[html:FIELD]]`` and ``[[text:FIELD]]`` markers
    for the fields in :data:`PERSONAL_FIELDS`; :mod:`newsletter.personalize` fills them.
    """

    issue: Issue
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    assets: tuple[Path, ...] = field(default=())  # local files the HTML refers to


@dataclass(frozen=True)
class RenderedMessage:
    """One recipient's copy: what a provider hands to the mail system."""

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]


SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# Never mailed again, and never reactivated by an import or an add.
SUPPRESSED_STATUSES = frozenset({"unsubscribed", "bounced", "complained"})


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: str
    topics: tuple[str, ...] = ()
    attributes: dict[str, str] = field(default_factory=dict)
    # Signed into every link issued to this person (newsletter.tokens): a link acts on
    # the row it was issued to and on no other, even one with the same id.
    link_key: str = field(default="", repr=False, compare=False)
