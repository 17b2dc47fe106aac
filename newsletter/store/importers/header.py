"""An import file's header line: which export it is, and where each field is in a row."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import ImportFileError
from newsletter.safe_text import clean_text
from newsletter.store.importers import SourceFormat, choose_format
from newsletter.store.importers.base import column_key
from newsletter.store.importers.limits import check_attribute_columns
from newsletter.store.importers.summary import ImportOptions, ImportSummary


@dataclass(frozen=True)
class Layout:
    """Where each field is in a row of this file, and what the file is."""

    header: list[str]
    positions: dict[str, int]
    attributes: tuple[tuple[str, int], ...]  # (attribute name, position)
    source_format: SourceFormat
    kind: str


def read_header(
    path: Path, header_line: str, delimiter: str, dry_run: bool, options: ImportOptions
) -> tuple[Layout, ImportSummary]:
    try:
        header = next(csv.reader([header_line], delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise ImportFileError(f"{path}: the header line cannot be read as CSV ({error})") from None
    header = [clean_text(name).strip() for name in header]
    source_format, kind = choose_format(options.source_format, header, path, options.group_columns)
    positions: dict[str, int] = {}
    columns: dict[str, str] = {}
    ignored: list[str] = []
    attributes: list[tuple[str, int]] = []
    for position, name in enumerate(header):
        key = column_key(name)
        field_name = source_format.field_for(key)
        if field_name is None:
            if not name:
                continue
            if (
                source_format.other_columns_as_attributes
                and not options.ignore_other_columns
                and key not in source_format.dropped
            ):
                attributes.append((name, position))
            else:
                ignored.append(name)
            continue
        if field_name in positions:
            raise ImportFileError(
                f"{path}:1: columns {columns[field_name]!r} and {name!r} both hold the "
                f"{field_name.replace('_', ' ')}; remove or rename one of them"
            )
        positions[field_name] = position
        columns[field_name] = name
    if "email" not in positions:
        found = ", ".join(repr(name) for name in header)
        message = (
            f"{path}:1: no email column in the header (found {found}); name the column "
            "with the addresses 'email' (E-mail and Email Address work too)"
        )
        other = [mark for mark in ("|", ":", ",", ";", "\t") if mark in header_line.strip()]
        if len(header) == 1 and other:
            message += (
                f"; the header is a single column: if the file is delimited by {other[0]!r}, "
                "pass --delimiter (comma, semicolon and tab are recognised on their own)"
            )
        raise ImportFileError(message)
    check_attribute_columns(path, tuple(attributes))
    summary = ImportSummary(
        path=path,
        dry_run=dry_run,
        delimiter=delimiter,
        columns=columns,
        ignored_columns=ignored,
        format_name=source_format.name,
        format_title=source_format.title,
        kind=kind,
        attribute_columns=[name for name, _ in attributes],
        group_like_columns=[
            name for name, _ in attributes if source_format.may_hold_groups(column_key(name))
        ],
    )
    layout = Layout(header, positions, tuple(attributes), source_format, kind)
    return layout, summary
