"""Writing subscribers as CSV, streamed, safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return)
would run as a formula in Excel, LibreOffice or Google Sheets; such values, which
anyone can type into a signup form's name field, are written with a leading
apostrophe so that the spreadsheet shows them as text (the OWASP advice). A value
that already starts with an apostrophe followed by one of those gets another one,
so that the import, which removes one, reads back exactly what was stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Readable back by `subscribers import`, into a fresh store, unchanged.
EXPORT_COLUMNS = (
    "email",
    "name",
    "topics",
    "status",
    "subscribed_at",
    "source",
    "confirmed_at",
    "unsubscribed_at",
    "attributes",
    "subscribed_ip",
    "confirmed_ip",
    "unsubscribe_source",
    "unsubscribe_reason",
)


def neutralize(value: str) -> str:
    """The value, prefixed with an apostrophe if a spreadsheet would run it."""
    if value.startswith(FORMULA_STARTS) or (
        value.startswith("'") and value[1:].startswith((*FORMULA_STARTS, "'"))
    ):
        return f"'{value}"
    return value


def export_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    return neutralize(str(value))


def write_csv(
    records: Iterable[dict[str, Any]], out: TextIO, columns: Sequence[str] = EXPORT_COLUMNS
) -> int:
    """Write ``records`` (as :meth:`Store.records` yields them) to ``out``; the row count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for record in records:
        writer.writerow([export_cell(record.get(column)) for column in columns])
        count += 1
    return count
