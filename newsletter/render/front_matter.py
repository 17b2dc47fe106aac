"""An issue file's front matter: the YAML between its two ``---`` lines, and the schema
it must follow (title, subject, date, author, topics, hero, call to action, a subject
test's variants, ...)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from newsletter.config import AbOverrides, Greeting, HttpUrl, OneLine, Schema
from newsletter.errors import IssueFileError
from newsletter.safe_text import first_control


class AuthorMatter(Schema):
    name: OneLine
    bio: str = ""
    image: str | None = None
    image_alt: str = ""


class ImageMatter(Schema):
    src: str = Field(min_length=1)
    alt: str = Field(min_length=1, description="Required: describe the image for screen readers.")
    caption: str = ""


class CallToActionMatter(Schema):
    text: OneLine = Field(min_length=1)
    url: HttpUrl


def _no_control_characters(value: str) -> str:
    control = first_control(value)
    if control is not None:
        raise ValueError(
            f"contains the control character U+{ord(control):04X}, which would reach mail "
            "headers and terminals; remove it"
        )
    return value


# The subject goes into the Subject header, the title and preheader into the CLI's output.
HeaderLine = Annotated[OneLine, AfterValidator(_no_control_characters)]


def _variants(value: list[str]) -> list[str]:
    if not 2 <= len(value) <= 4:
        raise ValueError(f"give 2 to 4 subjects to test, not {len(value)}")
    if any(not variant.strip() for variant in value):
        raise ValueError("a subject variant is empty; write each subject out")
    seen = {variant.strip() for variant in value}
    if len(seen) != len(value):
        raise ValueError("two subject variants are the same; give each a different subject")
    return value


# A subject test's subjects (docs/subject-tests.md): 2 to 4, distinct, none empty.
SubjectVariants = Annotated[list[HeaderLine], AfterValidator(_variants)]


class FrontMatter(Schema):
    title: HeaderLine = Field(min_length=1)
    subject: HeaderLine | None = None
    preheader: HeaderLine = ""
    date: dt.date | None = None
    author: AuthorMatter | None = None
    topics: list[str] = Field(default_factory=list)
    hero: ImageMatter | None = None
    cta: CallToActionMatter | None = None
    greeting: Greeting | None = None  # None: the config's greeting
    # This issue's language, for its mail and web page; None: the config's.
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")
    # When to send: read by newsletter.send.schedule (a time in the config's timezone, or
    # with an offset); YAML gives a datetime for full timestamps, a string otherwise.
    send_at: dt.datetime | str | None = None
    # A step of an automation's sequence: how long after the reader became active it
    # goes out ("3 days"); read by newsletter.automations.sequences.
    after: str | int | None = None
    # Who among the topics' readers gets it: a segment's name or expression, resolved
    # against newsletter.yaml by newsletter.send.plan.plan_send (docs/segments.md).
    segment: OneLine | None = Field(None, min_length=1)
    # A subject test: the sample gets these subjects, the rest the winner; ab: its own
    # settings over the config's ab: (newsletter.send.subject_test).
    subject_variants: SubjectVariants | None = None
    ab: AbOverrides | None = None

    @model_validator(mode="after")
    def _one_kind_of_subject(self) -> FrontMatter:
        if self.subject_variants is not None and self.subject is not None:
            raise ValueError(
                "subject_variants: give either subject or subject_variants, not both (the "
                "first variant is the subject of the preview)"
            )
        if self.ab is not None and self.subject_variants is None:
            raise ValueError("ab: only for a subject test; add subject_variants: or remove ab:")
        return self


def split_front_matter(path: Path, source: str) -> tuple[str, str, int]:
    """Return (front matter, body, line number where the body starts)."""
    source = source.removeprefix("\ufeff")
    lines = source.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise IssueFileError(
            f"{path}:1: an issue starts with a '---' line, then YAML front matter "
            "(title, date, ...), then another '---' line"
        )
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise IssueFileError(f"{path}: the front matter has no closing '---' line; add one")
