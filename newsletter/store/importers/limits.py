"""How much of an import file may become attributes: the columns a plain CSV (or a
service's custom fields) keeps, their names and their values.

An attribute is a small fact a segment tests (``attributes.Country == "GB"``). A file
with hundreds of such columns, or a cell holding a page of text, is a survey dump or a
broken file, not a list: every one of its subscribers would carry it into every
campaign's snapshot and every export. The limits are far above the custom fields a
newsletter's list holds; a file over them stops before anything is written, naming
the line and column.

The same limits hold for the attributes of a JSON cell (a plain CSV's ``attributes``,
listmonk's ``attributes``, Buttondown's ``metadata``): at most 100 keys, each name and
value at most 1,000 characters, nested objects counted key by key once flattened.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from newsletter.errors import ImportFileError

MAX_ATTRIBUTE_COLUMNS = 100
MAX_ATTRIBUTE_NAME = 1000  # characters
MAX_ATTRIBUTE_VALUE = 1000  # characters

# A JSON cell shorter than this cannot break a limit, so the import's read-through
# parses only longer ones: a name or a string value is never longer than its cell, a
# number's or a list's JSON text at most a few times its length (1e9 is 1000000000.0),
# and 101 keys take over 400 characters.
JSON_CELL_WORTH_READING = MAX_ATTRIBUTE_VALUE // 8

_WHAT_TO_DO = "or pass --ignore-other-columns to import none of the other columns"


def check_attribute_columns(path: Path, attributes: tuple[tuple[str, int], ...]) -> None:
    """The header's columns kept as attributes: not too many, no name too long."""
    if len(attributes) > MAX_ATTRIBUTE_COLUMNS:
        name, position = attributes[MAX_ATTRIBUTE_COLUMNS]
        raise ImportFileError(
            f"{path}:1: column {position + 1} ({_shown(name)}) would be the "
            f"{MAX_ATTRIBUTE_COLUMNS + 1}st kept as an attribute, and at most "
            f"{MAX_ATTRIBUTE_COLUMNS} are; remove the columns you do not need, {_WHAT_TO_DO}; "
            "nothing was imported"
        )
    for name, position in attributes:
        if len(name) > MAX_ATTRIBUTE_NAME:
            raise ImportFileError(
                f"{path}:1: column {position + 1} ({_shown(name)}) has a name of "
                f"{len(name):,} characters, more than the {MAX_ATTRIBUTE_NAME:,} an attribute's "
                f"name may have; shorten it, {_WHAT_TO_DO}; nothing was imported"
            )


def value_too_long(path: Path, line: int, name: str, position: int, length: int) -> ImportFileError:
    """The error for a value too long to keep as an attribute (line ``line``)."""
    return ImportFileError(
        f"{path}:{line}: column {position + 1} ({_shown(name)}) holds {length:,} characters, "
        f"more than the {MAX_ATTRIBUTE_VALUE:,} an attribute may hold; shorten the value, "
        f"remove the column, {_WHAT_TO_DO}; nothing was imported"
    )


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else f"{name[:40]}...")


def json_attributes_problem(attributes: Mapping[str, str]) -> str | None:
    """What in a JSON cell's attributes (flattened) is over a limit, or None."""
    if len(attributes) > MAX_ATTRIBUTE_COLUMNS:
        return (
            f"holds {len(attributes):,} attributes, more than the {MAX_ATTRIBUTE_COLUMNS} a "
            "subscriber may have; keep the keys you need"
        )
    for name, value in attributes.items():
        if len(name) > MAX_ATTRIBUTE_NAME:
            return (
                f"has a key of {len(name):,} characters ({_shown(name)}), more than the "
                f"{MAX_ATTRIBUTE_NAME:,} an attribute's name may have; shorten it"
            )
        if len(value) > MAX_ATTRIBUTE_VALUE:
            return (
                f"holds {len(value):,} characters under {_shown(name)}, more than the "
                f"{MAX_ATTRIBUTE_VALUE:,} an attribute may hold; shorten the value"
            )
    return None


def json_cell_over_limits(
    path: Path, line: int, column: str, position: int, problem: str
) -> ImportFileError:
    """The error for a JSON cell whose attributes are over a limit (line ``line``)."""
    return ImportFileError(
        f"{path}:{line}: column {position + 1} ({_shown(column)}) {problem}, or remove the "
        "column; nothing was imported"
    )
