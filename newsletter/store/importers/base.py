"""What every export format shares: a row's facts in our terms, and the readers of cells.

A format (one small module per service) names the header columns it reads, how it
recognises its own header, and turns one row's cells into a :class:`SourceRow`:
the address, *our* status, the source's own times and reason, the name, tags and
groups (values to map to topics), attributes. The import validates the rest.

The safety rule lives here too: a status value a format does not know raises
:class:`RowError`, so the row is rejected with its line number, never defaulted
to active.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.safe_text import clean_text
from newsletter.store.csv_export import FORMULA_STARTS
from newsletter.store.importers.limits import json_attributes_problem


class RowError(Exception):
    """Why one row is rejected; becomes its line in the report and the rejects file."""


@dataclass(slots=True)
class SourceRow:
    """One row of an export, in this project's terms (not validated yet)."""

    email: str
    status: str  # one of ours; "" where the row has none (the --status default applies)
    name: str = ""
    topics: str = ""  # topic ids as written in a plain CSV's topics column
    tags: tuple[str, ...] = ()  # the source's tags, labels, groups: mapped to topics
    subscribed_at: dt.datetime | None = None
    subscribed_ip: str | None = None
    confirmed_at: dt.datetime | None = None
    confirmed_ip: str | None = None
    status_at: dt.datetime | None = None  # when they unsubscribed, bounced, complained
    reason: str | None = None  # why, in the source's words
    status_source: str | None = None  # who recorded the opt-out (our own exports)
    source: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


class SourceFormat:
    """One service's export. Subclasses set the class attributes and :meth:`read`."""

    name = "csv"
    title = "CSV file"
    # Our field -> the header names it may have, compared by :func:`column_key`.
    columns: Mapping[str, Sequence[str]] = {}
    # Other columns: kept as attributes (a service's own fields) or listed as ignored.
    other_columns_as_attributes = False
    # Our field whose cell is a JSON object of attributes (read by json_attributes), if
    # any: the import reads it through before writing, for the limits.
    json_attributes_field = ""
    # Columns never kept, even as attributes (location, internal campaign ids).
    dropped: frozenset[str] = frozenset()
    # Whether imports.group_columns applies: columns kept as attributes are then looked
    # at for interest groups (by their title, and by values that name a topic).
    reads_groups = False

    def field_for(self, key: str) -> str | None:
        """Our field for a header column (by its :func:`column_key`), or None."""
        for name, aliases in self.columns.items():
            if key in aliases:
                return name
        return None

    def recognise(self, keys: frozenset[str], path: Path) -> str | None:
        """The kind of file ("unsubscribed members"), or None if the header is not ours."""
        return None

    def may_hold_groups(self, key: str) -> bool:
        """Whether a column kept as attributes looks like one of the format's interest
        groups that ``imports.group_columns`` could make topics (by its name's key)."""
        return False

    def kind(self, keys: frozenset[str], path: Path) -> str:
        """The kind of a file this format was chosen for by name (``--from``)."""
        return self.recognise(keys, path) or ""

    def read(self, fields: Mapping[str, str], kind: str) -> SourceRow:
        raise NotImplementedError


def column_key(name: str) -> str:
    """A header name compared without case, spaces or punctuation ("E-mail" is "email")."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def unneutralize(value: str) -> str:
    """Undo an export's formula guard: ``'=x`` is ``=x``; ``'Ohana`` stays as it is."""
    if value.startswith("'") and value[1:].startswith((*FORMULA_STARTS, "'")):
        return value[1:]
    return value


def parse_time(value: str, column: str) -> dt.datetime | None:
    """An export's date or time, as aware UTC; times without a zone are taken as UTC.

    Accepts ISO 8601 (``2024-03-01``, ``2024-03-01T10:00:00.000Z``, ``+02:00``) and the
    space-separated forms exports use (``2024-03-01 10:00:00``, ``... UTC``).
    """
    value = value.strip()
    if not value:
        return None
    text = value.removesuffix(" UTC").removesuffix(" +0000")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RowError(
            f"{column} {value!r} is not a date; write it in ISO 8601, "
            "like 2024-03-01 or 2024-03-01T10:00:00Z"
        ) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


_TRUE = frozenset({"true", "yes", "1", "t", "y"})
_FALSE = frozenset({"false", "no", "0", "f", "n"})


def parse_flag(value: str, column: str, *, empty: bool | None = None) -> bool:
    """true/false, yes/no, 1/0 in any case; anything else rejects the row."""
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    if not folded and empty is not None:
        return empty
    raise RowError(f"{column} {value!r} is not understood; expected true or false")


def mapped_status(value: str, statuses: Mapping[str, str], column: str) -> str:
    """The source's status word in ours; an unknown one rejects the row (never active)."""
    if not value.strip():
        raise RowError(f"no {column}; the row is not imported rather than guessed active")
    status = statuses.get(value.strip().lower())
    if status is None:
        known = ", ".join(sorted(statuses))
        raise RowError(
            f"{column} {value!r} is not a status this import understands ({known}); "
            "the row is not imported rather than guessed active"
        )
    return status


@functools.lru_cache(maxsize=4096)  # a list has few distinct tag and group cells
def split_list(value: str) -> tuple[str, ...]:
    """A cell holding several values: a JSON array, or comma-separated with quotes.

    ``"Food & Drink", "Travel, Europe"`` is two values (Mailchimp quotes tags), and so
    is ``Food & Drink, Travel``; ``&`` is part of a value, never a separator.
    """
    value = value.strip()
    if not value:
        return ()
    if value.startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            items = None
        if isinstance(items, list):
            return tuple(
                clean_text(str(item.get("name", "") if isinstance(item, dict) else item)).strip()
                for item in items
                if item
            )
    try:
        items = next(csv.reader([value], skipinitialspace=True), [])
    except csv.Error:
        items = value.split(",")
    return tuple(text for item in items if (text := clean_text(item).strip()))


class AttributesOverLimits(RowError):
    """A JSON cell's attributes over a limit of :mod:`.limits`: the import's read-through
    (``rows.check_attribute_values``) stops the import on it before anything is written."""


def json_attributes(value: str, column: str) -> dict[str, str]:
    """A JSON object cell (listmonk's attributes, Buttondown's metadata) as attributes.

    A nested object's keys become dotted names (``{"address": {"city": "Lyon"}}`` is
    ``address.city``), which a segment tests as ``attributes["address.city"]``; a list,
    a number or true/false is kept as its JSON text. Over a limit of :mod:`.limits`:
    :class:`AttributesOverLimits`."""
    value = value.strip()
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):  # nested thousands deep: not a record
        parsed = None
    if not isinstance(parsed, dict):
        raise RowError(f'{column} must be a JSON object, like {{"city": "Lyon"}}')
    attributes: dict[str, str] = {}
    objects: list[tuple[str, dict[object, object]]] = [("", parsed)]
    for prefix, items in objects:  # breadth first, without recursion: depth is theirs
        for key, item in items.items():
            if isinstance(item, dict):
                objects.append((f"{prefix}{key}.", item))
            elif item not in (None, ""):
                attributes[f"{prefix}{key}"] = (
                    item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
                )
    if problem := json_attributes_problem(attributes):
        raise AttributesOverLimits(f"{column} {problem}")
    return attributes
