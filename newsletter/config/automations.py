"""Mail that goes out on its own (``automations:``): a sequence of steps after signup or
an RSS-to-email digest, and when a digest's ``every:`` falls."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import Field, model_validator

from newsletter.config.fields import HttpUrl, Schema, Slug


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
