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
    # The greeting line from the front matter ("" for none); None: the config's default.
    greeting: str | None = None
    # The front matter's language (``de``); None: the config's.
    language: str | None = None
    # The front matter's segment: a name under ``segments:`` or an expression; None: none.
    segment: str | None = None
    # A subject test's subjects (``subject`` is the first), () for none; ``ab``: the
    # front matter's own ab: settings over the config's, as (key, validated value).
    subject_variants: tuple[str, ...] = ()
    ab: tuple[tuple[str, object], ...] = ()


# The per-recipient fields. The compiled message holds a marker for each, and
# personalisation replaces the markers; nothing else varies between recipients.
PERSONAL_FIELDS = (
    "name",
    "greeting_name",
    "email",
    "unsubscribe_url",
    "preferences_url",
    "view_url",
    # The reader's part of a tracked link (/c/<link>/<click_key>), only with
    # tracking.per_subscriber; "" otherwise (newsletter.send.click_tracking).
    "click_key",
)


# What an English greeting says where the name is unknown: "Hi there,". Greetings are
# written to read well with it ("Hi {first_name},", "Hello {first_name},"); each language
# has its own (CompiledIssue.greeting_fallback, from newsletter.languages).
GREETING_FALLBACK = "there"
# Titles that come before a name and are not one: "Dr Jane Smith" is greeted as Jane.
HONORIFICS = frozenset(
    [
        "dr",
        "doctor",
        "prof",
        "professor",
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "sir",
        "dame",
        "lady",
        "lord",
        "rev",
        "revd",
        "reverend",
        "fr",
        "father",
        "sr",
        "sister",
        "br",
        "brother",
        "capt",
        "captain",
        "col",
        "major",
        "mme",
        "mlle",
        "m",
        "herr",
        "frau",
        "sra",
        "srta",
    ]
)


def first_name(name: str) -> str:
    """The name to greet someone by, or "" where there is none to be sure of.

    ``"Dr Jane Smith"`` -> ``"Jane"``; ``"Smith, Jane"`` -> ``"Jane"``; ``"Dr Smith"`` ->
    ``"Dr Smith"`` (a title with a surname only stays formal); ``"J. Smith"``, an address
    or an empty name -> ``""``.
    """
    # Called for every recipient of a send: the common case ("Jane Smith") is a split
    # and three cheap tests.
    words = name.split()
    if not words or "@" in name:
        return ""
    if "," in name and name.count(",") == 1:  # "Smith, Jane": the given name comes after
        surname, given = (part.strip() for part in name.split(","))
        if given and surname:
            words = given.split()
    if words[0].rstrip(".").lower() in HONORIFICS:
        titles = []
        while words and words[0].rstrip(".").lower() in HONORIFICS:
            titles.append(words.pop(0))
        if not words:
            return ""
        if len(words) == 1:  # "Dr Smith": a title with a surname only stays formal
            return f"{titles[0]} {words[0]}"
    first = words[0]
    if len(first.rstrip(".")) <= 1:  # an initial: "J. Smith"
        return ""
    if len(first) > 2 and first.isupper():  # "JANE SMITH" from a form in capitals
        return first.capitalize()
    return first


@dataclass(frozen=True, slots=True)
class Personalization:
    """What differs between two recipients of the same issue."""

    email: str
    name: str = ""
    unsubscribe_url: str = ""
    preferences_url: str = ""
    view_url: str = ""
    click_key: str = ""

    def values(self, greeting_fallback: str = GREETING_FALLBACK) -> dict[str, str]:
        """The marker values; ``greeting_fallback`` is the issue language's word for an
        unknown name (:attr:`CompiledIssue.greeting_fallback`)."""
        return {
            "name": self.name,
            "greeting_name": first_name(self.name) or greeting_fallback,
            "email": self.email,
            "unsubscribe_url": self.unsubscribe_url,
            "preferences_url": self.preferences_url,
            "view_url": self.view_url,
            "click_key": self.click_key,
        }


@dataclass(frozen=True)
class ProcessedImage:
    """A local image as the mail shows it: resized, recompressed, content-hashed name."""

    source: Path
    name: str  # the file name under assets_url (and in build/assets/)
    path: Path  # the processed file
    width: int  # pixels; 0 where unknown (an SVG)
    height: int
    source_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class CompiledIssue:
    """An issue rendered once, with markers where each recipient's values go.

    ``html`` and ``text`` contain ``[[html:FIELD]]`` and ``[[text:FIELD]]`` markers
    for the fields in :data:`PERSONAL_FIELDS`; :mod:`newsletter.render.personalize` fills them.
    """

    issue: Issue
    subject: str
    preheader: str
    mjml: str
    html: str
    text: str
    assets: tuple[Path, ...] = field(default=())  # local files the HTML refers to
    images: tuple[ProcessedImage, ...] = field(default=())  # the same, with their sizes
    # The greeting's word for a reader without a name, in the issue's language ("there").
    greeting_fallback: str = GREETING_FALLBACK


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
