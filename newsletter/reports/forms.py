"""The report's dates and counts in the newsletter's language (``docs/reports.md``).

Plain ``en`` (the default) keeps the report as it always was: ISO 8601 dates and
ungrouped counts. Any other language, a regional English too, writes them the
language's way through :mod:`newsletter.languages` (``26. November 2026``, ``1.234``).
The labels stay English: the report is for the editor. JSON and CSV never come here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter import languages


@dataclass(frozen=True)
class Forms:
    language: str = "en"

    @property
    def plain(self) -> bool:
        return self.language == "en"

    def date(self, value: dt.date) -> str:
        """An issue's day: ``2026-11-26`` (en), ``26. November 2026`` (de)."""
        if self.plain:
            return f"{value:%Y-%m-%d}"
        return languages.long_date(value if type(value) is dt.date else _day(value), self.language)

    def week(self, value: dt.date) -> str:
        """A week's first day, where room is short: ``2026-11-23`` (en), ``23.11.2026`` (de)."""
        return value.isoformat() if self.plain else languages.short_date(value, self.language)

    def chart_week(self, value: dt.date) -> str:
        """A week under a chart's axis: ``23 Nov 26`` (en), ``23.11.2026`` (de)."""
        return f"{value:%d %b %y}" if self.plain else languages.short_date(value, self.language)

    def count(self, value: int) -> str:
        """``1234`` (en), ``1.234`` (de), ``1 234`` (fr)."""
        return str(value) if self.plain else languages.count(value, self.language)


def _day(value: dt.date) -> dt.date:
    # A datetime is a date too; the cache of long_date keys on the day alone.
    return dt.date(value.year, value.month, value.day)
