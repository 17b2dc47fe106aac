"""Importing subscribers from a CSV file, streamed, with an account of every row.

The file is read once, a record at a time, and applied in chunks of
:data:`CHUNK_SIZE` rows, each chunk one transaction: an interrupted import leaves
the store consistent, and running the same import again completes it (rows already
in are ``unchanged``). Rows that cannot be imported are reported with their line
number and reason, and written to ``<file>.rejects.csv`` beside the input, so they
can be fixed and imported on their own; they never hold up the valid rows.

What the reader accepts: UTF-8 with or without a byte order mark (other encodings
with ``encoding=``); comma, semicolon or tab delimiters, sniffed from the header;
header names in any case, with common aliases (``E-mail``, ``Email Address``,
``First Name`` + ``Last Name``, ...). Topics are ids from ``newsletter.yaml``,
separated by spaces, commas, semicolons or ``|``.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from newsletter.errors import ImportFileError, StoreError
from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.safe_text import without_controls
from newsletter.store.addresses import InvalidAddress, address_key, normalize_address
from newsletter.store.bulk import Candidate
from newsletter.store.csv_export import neutralize
from newsletter.store.csv_reader import (
    DELIMITERS,
    Lines,
    Record,
    check_encoding,
    records,
    sniff_delimiter,
)
from newsletter.store.database import analyze
from newsletter.store.schema import subscriber_topics, subscribers
from newsletter.store.subscribers import Store, unknown_topic_message

CHUNK_SIZE = 1000
SHOWN_REJECTS = 20  # rejects kept in the summary for display; all go to the rejects file

# Header names, compared without case, spaces or punctuation ("E-mail" is "email").
COLUMN_ALIASES = {
    "email": ("email", "emailaddress", "mail", "emailadresse", "correo"),
    "name": ("name", "fullname", "displayname"),
    "first_name": ("firstname", "givenname", "fname", "forename"),
    "last_name": ("lastname", "surname", "familyname", "lname"),
    "topics": ("topics", "topic", "interests", "lists"),
    "status": ("status", "state"),
    "subscribed_at": (
        "subscribedat",
        "subscribed",
        "optintime",
        "signupdate",
        "dateadded",
        "createdat",
    ),
    "source": ("source",),
    "attributes": ("attributes",),
}
_FIELD_OF_ALIAS = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
# Status words other platforms export, mapped to ours (Mailchimp "cleaned" = bounced).
STATUS_ALIASES = {
    "subscribed": "active",
    "confirmed": "active",
    "unconfirmed": "pending",
    "cleaned": "bounced",
    "spam": "complained",
}
_TOPIC_SEPARATORS = re.compile(r"[\s,;|]+")

Progress = Callable[[int, int], None]  # (bytes read so far, file size)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportSummary:
    path: Path
    dry_run: bool
    delimiter: str
    columns: dict[str, str]  # our field -> the header name it was read from
    ignored_columns: list[str]
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    invalid: int = 0
    rejects_path: Path | None = None
    rejected: list[Rejected] = field(default_factory=list)  # the first SHOWN_REJECTS
    unknown_topics: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.suppressed + self.invalid


@dataclass(frozen=True)
class _Layout:
    """Where each field is in a row of this file."""

    header: list[str]
    positions: dict[str, int]


def rejects_path_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def import_csv(
    store: Store,
    path: Path,
    *,
    topics: Sequence[str] = (),
    status: str = "active",
    dry_run: bool = False,
    encoding: str = "utf-8",
    delimiter: str | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import ``path`` into ``store``; ``topics`` are added to every row.

    ``status`` applies to rows without one of their own. With ``dry_run`` every
    chunk is rolled back and no rejects file is written: the summary says what
    would happen.
    """
    extra_topics = store.check_topics(topics)
    if status not in ("active", "pending"):
        raise StoreError(f"imported subscribers are 'active' or 'pending', not {status!r}")
    encoding = check_encoding(path, encoding)
    total = path.stat().st_size
    rejects = _RejectsFile(rejects_path_for(path), enabled=not dry_run)
    with path.open(encoding=encoding, newline="") as file, rejects, _SeenAddresses() as seen:
        lines = Lines(file)
        header_line = lines.first_nonblank()
        if header_line is None:
            raise ImportFileError(
                f"{path} is empty; a subscribers CSV starts with a header line "
                "such as: email,name,topics"
            )
        delimiter = delimiter or sniff_delimiter(header_line)
        layout, summary = _read_header(path, header_line, delimiter, dry_run)
        rejects.header = layout.header
        rows = _RowReader(
            store, layout, extra_topics, status, source=f"import:{path.name}", summary=summary
        )
        chunk: list[tuple[Record, Candidate]] = []
        chunk_rejects: list[tuple[Rejected, list[str]]] = []

        def flush() -> None:
            _apply_chunk(store, chunk, chunk_rejects, seen, summary, dry_run)
            for rejected, values in sorted(chunk_rejects, key=lambda item: item[0].line):
                rejects.write(rejected, values)
                if len(summary.rejected) < SHOWN_REJECTS:
                    summary.rejected.append(rejected)
            chunk.clear()
            chunk_rejects.clear()
            if progress is not None:
                progress(min(lines.position, total), total)

        for record in records(lines, delimiter):
            result = rows.read(record)
            if isinstance(result, Rejected):
                chunk_rejects.append((result, record.values))
            else:
                chunk.append((record, result))
            if len(chunk) + len(chunk_rejects) >= CHUNK_SIZE:
                flush()
        flush()
        if progress is not None:
            progress(total, total)
    if not dry_run:
        analyze(store.engine, subscribers, subscriber_topics)
    summary.rejects_path = rejects.path if rejects.written else None
    return summary


def _apply_chunk(
    store: Store,
    chunk: list[tuple[Record, Candidate]],
    rejects: list[tuple[Rejected, list[str]]],
    seen: _SeenAddresses,
    summary: ImportSummary,
    dry_run: bool,
) -> None:
    """Drop duplicates of earlier rows, then apply the rest in one transaction."""
    keys = [address_key(candidate.email) for _, candidate in chunk]
    first_lines = seen.earlier_lines(keys)
    unique: list[Candidate] = []
    for (record, candidate), key in zip(chunk, keys, strict=True):
        earlier = first_lines.get(key)
        if earlier is not None:
            reason = f"duplicate of line {earlier} ({candidate.email}); only the first is imported"
            rejects.append((Rejected(record.line, reason), record.values))
            summary.invalid += 1
            continue
        first_lines[key] = record.line
        unique.append(candidate)
    seen.add(first_lines.items())
    for outcome in store.merge_many(unique, dry_run=dry_run):
        setattr(summary, outcome, getattr(summary, outcome) + 1)


class _RowReader:
    """One record's values to a :class:`Candidate`, or the reason it is rejected."""

    def __init__(
        self,
        store: Store,
        layout: _Layout,
        extra_topics: tuple[str, ...],
        default_status: str,
        *,
        source: str,
        summary: ImportSummary,
    ) -> None:
        self.known_topics = store.topics
        self.layout = layout
        self.extra_topics = extra_topics
        self.default_status = default_status
        self.source = source
        self.summary = summary

    def read(self, record: Record) -> Candidate | Rejected:
        try:
            candidate = self._candidate(record)
        except _RowError as error:
            self.summary.invalid += 1
            return Rejected(record.line, str(error))
        return candidate

    def _candidate(self, record: Record) -> Candidate:
        if record.error:
            raise _RowError(record.error)
        values = record.values
        header = self.layout.header
        if len(values) > len(header) and any(value.strip() for value in values[len(header) :]):
            raise _RowError(
                f"{len(values)} values but the header has {len(header)} columns; "
                "put values that contain the delimiter in double quotes"
            )
        fields = {
            name: values[position].strip()
            for name, position in self.layout.positions.items()
            if position < len(values)
        }
        if record.spans_lines and any(
            "\n" in fields.get(name, "") or "\r" in fields.get(name, "")
            for name in ("email", "name", "first_name", "last_name", "topics", "status")
        ):
            raise _RowError(
                "a quoted value runs over several lines; check this row for an unbalanced "
                '" (the lines after it are read again on their own)'
            )
        get = fields.get
        full_name = " ".join(filter(None, (get("first_name"), get("last_name"))))
        return Candidate(
            email=self._email(get("email", "")),
            name=without_controls(get("name") or full_name),
            topics=self._topics(get("topics", "")),
            status=self._status(get("status", "")),
            source=get("source") or self.source,
            subscribed_at=_timestamp(get("subscribed_at", "")),
            attributes=_attributes(get("attributes", "")),
        )

    def _email(self, value: str) -> str:
        if not value:
            raise _RowError("no email address")
        try:
            return normalize_address(value)
        except InvalidAddress as error:
            others = [d for d in (*DELIMITERS, "|") if d in value]
            if others:
                shown = DELIMITERS.get(others[0], repr(others[0]))
                raise _RowError(
                    f"{value!r} holds several values separated by {shown}, but the header "
                    "uses another delimiter; use one delimiter throughout the file"
                ) from None
            raise _RowError(str(error)) from None

    def _topics(self, value: str) -> tuple[str, ...]:
        topics = list(self.extra_topics)
        for topic in _TOPIC_SEPARATORS.split(value.lower()):
            if not topic or topic in topics:
                continue
            if topic not in self.known_topics:
                self.summary.unknown_topics[topic] += 1
                raise _RowError(unknown_topic_message(topic, self.known_topics))
            topics.append(topic)
        return tuple(topics)

    def _status(self, value: str) -> str:
        if not value:
            return self.default_status
        status = STATUS_ALIASES.get(value.lower(), value.lower())
        if status not in SUBSCRIBER_STATUSES:
            raise _RowError(
                f"unknown status {value!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
            )
        return status


class _RowError(Exception):
    """Why one row is rejected (internal; becomes a :class:`Rejected`)."""


def _timestamp(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(
            f"subscribed_at {value!r} is not a date; write it in ISO 8601, "
            "like 2024-03-01 or 2024-03-01T10:00:00Z"
        ) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _attributes(value: str) -> dict[str, str]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise _RowError('attributes must be a JSON object, like {"city": "Lyon"}')
    return {str(key): str(item) for key, item in parsed.items()}


# -- the header -----------------------------------------------------------------


def _read_header(
    path: Path, header_line: str, delimiter: str, dry_run: bool
) -> tuple[_Layout, ImportSummary]:
    try:
        header = next(csv.reader([header_line], delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise ImportFileError(f"{path}: the header line cannot be read as CSV ({error})") from None
    header = [name.strip() for name in header]
    positions: dict[str, int] = {}
    columns: dict[str, str] = {}
    ignored: list[str] = []
    for position, name in enumerate(header):
        field_name = _FIELD_OF_ALIAS.get(re.sub(r"[^a-z0-9]", "", name.casefold()))
        if field_name is None:
            if name:
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
    summary = ImportSummary(
        path=path, dry_run=dry_run, delimiter=delimiter, columns=columns, ignored_columns=ignored
    )
    return _Layout(header, positions), summary


# -- keeping track ----------------------------------------------------------------


class _SeenAddresses:
    """Which address the file had on which line, to name duplicates.

    Kept in a private temporary SQLite file, not a dict: for a million rows a dict
    of addresses takes over 100 MB, half the memory budget. Only a 16-byte hash of
    each address is stored, and the file is deleted when the import ends.
    """

    def __enter__(self) -> _SeenAddresses:
        self._db = sqlite3.connect("")  # "": a private on-disk database, deleted on close
        self._db.execute("CREATE TABLE seen (digest BLOB PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._db.close()

    def earlier_lines(self, keys: Sequence[str]) -> dict[str, int]:
        """The line each key was first seen on, for the keys seen before."""
        by_digest = {_digest(key): key for key in keys}
        found: dict[str, int] = {}
        digests = list(by_digest)
        for start in range(0, len(digests), 500):
            part = digests[start : start + 500]
            marks = ",".join("?" * len(part))
            for digest, line in self._db.execute(
                f"SELECT digest, line FROM seen WHERE digest IN ({marks})", part
            ):
                found[by_digest[digest]] = line
        return found

    def add(self, items: Any) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO seen VALUES (?, ?)",
            ((_digest(key), line) for key, line in items),
        )


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


class _RejectsFile:
    """``<input>.rejects.csv``: the rejected rows as read, with line and reason first.

    Created at the first reject; a stale one from an earlier run is removed, so the
    file always belongs to the latest import. Values are neutralised against formula
    injection, as in an export: the file is meant to be opened in a spreadsheet.
    """

    def __init__(self, path: Path, *, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        self.header: list[str] = []
        self.written = False
        self._file: TextIO | None = None
        self._writer: Any = None

    def __enter__(self) -> _RejectsFile:
        if self.enabled:
            self.path.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, rejected: Rejected, values: list[str]) -> None:
        if not self.enabled:
            return
        if self._writer is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "error", *self.header])
        self._writer.writerow([rejected.line, rejected.reason, *map(neutralize, values)])
        self.written = True
