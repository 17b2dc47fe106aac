"""Reading a CSV file someone else wrote, a record at a time, with line numbers.

The parts of an import that know about files rather than subscribers: the encoding
check, the delimiter, physical lines numbered as an editor shows them, and records
that survive broken quoting.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, TextIO

from newsletter.errors import ImportFileError

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}


def check_encoding(path: Path, encoding: str) -> str:
    """Decode the whole file once before importing anything; the encoding to read with.

    Cheap (a fraction of a second for a million rows) and it makes a wrong encoding
    fail before the first row is written, with the line it was found on.
    """
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
    except LookupError:
        raise ImportFileError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or cp1252"
        ) from None
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # the same, with or without a byte order mark
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path} is a folder; give the CSV file") from None
    lines_before = 0
    with handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                # error.object: what the decoder held over from the last block, then this one.
                line = lines_before + error.object.count(b"\n", 0, error.start) + 1
                raise ImportFileError(
                    f"{path}:{line}: not {encoding.removesuffix('-sig')} text "
                    f"(byte 0x{error.object[error.start]:02x}); save the file as UTF-8, or pass "
                    "--encoding with its encoding (for Excel on Windows: --encoding cp1252)"
                ) from None
            lines_before += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"{path}: the file ends in the middle of a character; it is not "
                f"{encoding.removesuffix('-sig')} text: save it as UTF-8, or pass --encoding"
            ) from None
    return encoding


class Lines:
    """Physical lines with their numbers, and a way to read some of them again."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._number = 0
        self._again: list[tuple[int, str]] = []  # a stack: the next line is last
        self.consumed: list[tuple[int, str]] = []  # the lines of the current record
        self.position = 0  # characters read: progress, close enough to bytes

    def first_nonblank(self) -> str | None:
        while line := self._file.readline():
            self._number += 1
            self.position += len(line)
            if line.strip():
                return line
        return None

    def __iter__(self) -> Iterator[str]:
        while True:
            if self._again:
                number, line = self._again.pop()
            else:
                line = self._file.readline()
                if not line:
                    return
                self._number += 1
                self.position += len(line)
                number = self._number
            self.consumed.append((number, line))
            yield line

    def take_record(self) -> list[tuple[int, str]]:
        record, self.consumed = self.consumed, []
        return record

    def read_again(self, lines: list[tuple[int, str]]) -> None:
        self._again.extend(reversed(lines))


class Record(NamedTuple):
    """One CSV record: its first line's number, its values, or why it cannot be read.

    ``lines`` holds the physical lines of a record that spans several, so that a
    caller who finds it swallowed rows can have them read again on their own.
    """

    line: int
    values: list[str]
    spans_lines: bool = False
    error: str = ""
    lines: tuple[tuple[int, str], ...] = ()


def records(lines: Lines, delimiter: str) -> Iterator[Record]:
    """CSV records with their first line; a broken one is reported and skipped.

    Broken quoting would otherwise swallow the rest of the file into one value (or
    stop the reader); instead the record is rejected and reading resumes on the line
    after its first, so every other row still gets its chance.
    """
    while True:
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        try:
            for values in reader:
                record_lines = lines.take_record()
                if not "".join(values).strip():
                    continue  # a blank line, or only delimiters
                if len(record_lines) > 1:
                    yield Record(record_lines[0][0], values, True, lines=tuple(record_lines))
                else:
                    yield Record(record_lines[0][0], values)
            return
        except csv.Error as error:
            record_lines = lines.take_record()
            first_number, first_line = record_lines[0]
            lines.read_again(record_lines[1:])
            yield Record(
                first_number,
                [first_line.rstrip("\r\n")],
                error=f"the row cannot be read as CSV ({error}); check it for an unbalanced "
                '" or a stray quote inside a value',
            )


def looks_like_a_row(line: str, delimiter: str, email_position: int, columns: int) -> bool:
    """Whether a line inside a multi-line value reads as a subscriber row of its own.

    A quoted value may legitimately run over lines (a note); one whose lines carry
    something like an address where the email column is, or exactly as many cells as
    the header has columns, was opened by a stray quote and swallowed rows. (Such a
    row with a mistyped address must be rejected on its own line, not vanish.)
    """
    try:
        values = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return False
    if columns > 2 and len(values) == columns:
        return True
    if email_position >= len(values):
        return False
    value = values[email_position].strip()
    return "@" in value and not any(character.isspace() for character in value)


def sniff_delimiter(header_line: str) -> str:
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","
