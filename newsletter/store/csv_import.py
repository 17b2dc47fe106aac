"""Importing subscribers from a CSV file, streamed, with an account of every row.

The file is read once, a record at a time, and applied in chunks of
:data:`CHUNK_SIZE` rows, each chunk one transaction: an interrupted import leaves
the store consistent, and running the same import again completes it (rows already
in are ``unchanged``). Rows that cannot be imported are reported with their line
number and reason, and written to ``<file>.rejects.csv`` beside the input, so they
can be fixed and imported on their own; they never hold up the valid rows.

What the reader accepts: UTF-8 with or without a byte order mark (other encodings
with ``encoding=``); comma, semicolon or tab delimiters, sniffed from the header.
What the columns mean is up to the export's format (:mod:`newsletter.store.importers`):
a plain CSV, or Mailchimp's, Substack's, Buttondown's, Ghost's, Kit's, listmonk's,
beehiiv's or MailerLite's export, recognised by its header. A row whose status is not
understood is rejected, never imported as active.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from newsletter.errors import ImportFileError, StoreError
from newsletter.models import SUBSCRIBER_STATUSES, SUPPRESSED_STATUSES
from newsletter.safe_text import clean_text
from newsletter.store.addresses import InvalidAddress, address_key, normalize_address
from newsletter.store.bulk import Candidate
from newsletter.store.csv_export import neutralize
from newsletter.store.csv_reader import (
    DELIMITERS,
    Lines,
    Record,
    check_encoding,
    looks_like_a_row,
    records,
    sniff_delimiter,
)
from newsletter.store.database import analyze
from newsletter.store.dry_run import DryRun
from newsletter.store.importers import SourceFormat, choose_format
from newsletter.store.importers.base import RowError, column_key, split_list, unneutralize
from newsletter.store.importers.topics import TopicMapper
from newsletter.store.schema import subscriber_topics, subscribers
from newsletter.store.subscriber_rows import unknown_topic_message
from newsletter.store.subscribers import Store

CHUNK_SIZE = 1000
GROUP_PROBE_ROWS = 1000  # rows whose attribute values are looked at for interest groups
SHOWN_REJECTS = 20  # rejects kept in the summary for display; all go to the rejects file
# Fields that never hold a line break: one that does was opened by a stray quote.
KEY_FIELDS = ("email", "name", "first_name", "last_name", "topics", "status")
_TOPIC_SEPARATORS = re.compile(r"[,;|]+")

Progress = Callable[[int, int], None]  # (bytes read so far, file size)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    read_again: tuple[tuple[int, str], ...] = ()  # lines a broken quote swallowed

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportSummary:
    path: Path
    dry_run: bool
    delimiter: str
    columns: dict[str, str]  # our field -> the header name it was read from
    ignored_columns: list[str]
    format_name: str = "csv"
    format_title: str = "CSV file"
    kind: str = ""  # "unsubscribed members", ...
    attribute_columns: list[str] = field(default_factory=list)
    # Attribute columns that look like interest groups (imports.group_columns makes topics)
    group_like_columns: list[str] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    suppressed: int = 0
    invalid: int = 0
    rejects_path: Path | None = None
    rejected: list[Rejected] = field(default_factory=list)  # the first SHOWN_REJECTS
    unknown_topics: Counter[str] = field(default_factory=Counter)
    unmapped_tags: bool = False  # some unknown values came from tags or groups
    # (status in the file, outcome) -> rows; outcome is added, updated, ... or rejected
    by_status: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return self.added + self.updated + self.unchanged + self.suppressed + self.invalid


@dataclass(frozen=True)
class _Layout:
    """Where each field is in a row of this file, and what the file is."""

    header: list[str]
    positions: dict[str, int]
    attributes: tuple[tuple[str, int], ...]  # (attribute name, position)
    source_format: SourceFormat
    kind: str


@dataclass(frozen=True)
class ImportOptions:
    """How to read an export; the same for every file of a ZIP."""

    source_format: str = "auto"
    topics: Sequence[str] = ()
    status: str = "active"
    topic_map: Mapping[str, str] = field(default_factory=dict)
    group_columns: Sequence[str] = ()
    encoding: str = "utf-8"
    delimiter: str | None = None
    welcome: bool = False  # rows added as active enter the automations (welcome mail)


def rejects_path_for(path: Path) -> Path:
    return path.with_name(f"{path.stem}.rejects.csv")


def import_csv(
    store: Store,
    path: Path,
    options: ImportOptions | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    rejects_path: Path | None = None,
    source: str | None = None,
    planned: DryRun | None = None,
    **option_values: Any,
) -> ImportSummary:
    """Import ``path`` into ``store``; ``options.topics`` are added to every row.

    ``options.status`` applies to rows without a status of their own. With
    ``dry_run`` nothing is written, no rejects file either: the summary says what the
    run will do (``planned``: what earlier files of the same dry run would have
    written). Keyword options (``topics=``, ``status=``, ...) may be given instead of
    ``options``.
    """
    options = options or ImportOptions(**option_values)
    extra_topics = store.check_topics(options.topics)
    if options.status not in SUBSCRIBER_STATUSES:
        raise StoreError(
            f"unknown status {options.status!r}; use one of {', '.join(SUBSCRIBER_STATUSES)}"
        )
    mapper = TopicMapper(store.topics, options.topic_map)
    encoding = check_encoding(path, options.encoding)
    total = path.stat().st_size
    rejects = _RejectsFile(rejects_path or rejects_path_for(path), enabled=not dry_run)
    with path.open(encoding=encoding, newline="") as file, rejects, _SeenAddresses() as seen:
        lines = Lines(file)
        header_line = lines.first_nonblank()
        if header_line is None:
            raise ImportFileError(
                f"{path} is empty; a subscribers CSV starts with a header line "
                "such as: email,name,topics"
            )
        delimiter = options.delimiter or sniff_delimiter(header_line)
        layout, summary = _read_header(path, header_line, delimiter, dry_run, options)
        rejects.header = layout.header
        rows = _RowReader(
            layout,
            mapper,
            extra_topics,
            options.status,
            source=source or f"import:{path.name}",
            summary=summary,
        )
        chunk: list[tuple[Record, Candidate]] = []
        chunk_rejects: list[tuple[Rejected, list[str]]] = []

        def flush() -> None:
            _apply_chunk(
                store, chunk, chunk_rejects, seen, summary, dry_run, planned, options.welcome
            )
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
                lines.read_again(list(result.read_again))
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
    planned: DryRun | None,
    welcome: bool = False,
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
            summary.by_status[candidate.status, "rejected"] += 1
            continue
        first_lines[key] = record.line
        unique.append(candidate)
    seen.add(first_lines.items())
    outcomes = store.merge_many(unique, dry_run=dry_run, planned=planned, welcome=welcome)
    for candidate, outcome in zip(unique, outcomes, strict=True):
        setattr(summary, outcome, getattr(summary, outcome) + 1)
        summary.by_status[candidate.status, outcome] += 1


class _RowReader:
    """One record's values to a :class:`Candidate`, or the reason it is rejected."""

    def __init__(
        self,
        layout: _Layout,
        mapper: TopicMapper,
        extra_topics: tuple[str, ...],
        default_status: str,
        *,
        source: str,
        summary: ImportSummary,
    ) -> None:
        self.mapper = mapper
        self.layout = layout
        self.read_row = layout.source_format.read
        self.extra_topics = extra_topics
        self.default_status = default_status
        self.source = source
        self.summary = summary
        self.delimiter = summary.delimiter
        # Attribute columns whose values may be a format's interest groups, looked at in
        # the first rows only: a value that names a topic flags its column.
        self._group_probe = {
            name: position
            for name, position in layout.attributes
            if layout.source_format.reads_groups and name not in summary.group_like_columns
        }
        self._probe_rows = GROUP_PROBE_ROWS
        self.status = ""  # the current row's status, once known (for the counts)
        self._known_ids: dict[str, tuple[str, ...]] = {}

    def read(self, record: Record) -> Candidate | Rejected:
        self.status = ""
        if record.spans_lines and self._swallowed_rows(record):
            # Only the first line is rejected; the rest are read again on their own, so
            # every line of the file is imported or rejected with its own number.
            return self._rejected(
                Rejected(
                    record.line,
                    "a quoted value runs over several lines; check this row for an unbalanced "
                    '" (the lines after it are read again on their own)',
                    read_again=record.lines[1:],
                )
            )
        try:
            return self._candidate(record)
        except RowError as error:
            return self._rejected(Rejected(record.line, str(error)))

    def _rejected(self, rejected: Rejected) -> Rejected:
        self.summary.invalid += 1
        self.summary.by_status[self.status or "unreadable", "rejected"] += 1
        return rejected

    def _swallowed_rows(self, record: Record) -> bool:
        fields = {
            name: record.values[position]
            for name, position in self.layout.positions.items()
            if position < len(record.values)
        }
        if any("\n" in fields.get(name, "") or "\r" in fields.get(name, "") for name in KEY_FIELDS):
            return True
        email_position = self.layout.positions["email"]
        columns = len(self.layout.header)
        return any(
            looks_like_a_row(line, self.delimiter, email_position, columns)
            for _, line in record.lines[1:]
        )

    def _candidate(self, record: Record) -> Candidate:
        if record.error:
            raise RowError(record.error)
        values = record.values
        header = self.layout.header
        if len(values) > len(header) and any(value.strip() for value in values[len(header) :]):
            raise RowError(
                f"{len(values)} values but the header has {len(header)} columns; "
                "put values that contain the delimiter in double quotes"
            )
        if len(values) < len(header):  # a short row: its missing cells are empty
            values = values + [""] * (len(header) - len(values))
        fields = {
            name: values[position].strip() for name, position in self.layout.positions.items()
        }
        if "'" in "".join(values):  # rare: one join is cheaper than a check per value
            fields = {name: unneutralize(value) for name, value in fields.items()}
        row = self.read_row(fields, self.layout.kind)
        status = self.status = row.status or self.default_status
        email = self._email(row.email)
        suppressed = status in SUPPRESSED_STATUSES
        topics = self._topics(row.topics, row.tags, suppressed)
        # The formats' own keys are plain; values, and keys from a JSON cell, may not be.
        attributes = {
            key if key.isprintable() else clean_text(key): value
            if value.isprintable()
            else clean_text(value)
            for key, value in row.attributes.items()
            if value
        }
        for name, position in self.layout.attributes:  # header names: cleaned already
            if value := values[position].strip():
                attributes[name] = clean_text(unneutralize(value))
        if self._group_probe and self._probe_rows:
            self._probe_groups(values)
        return Candidate(
            email=email,
            name=clean_text(row.name),
            topics=topics,
            status=status,
            source=clean_text(row.source) or self.source,
            subscribed_at=row.subscribed_at,
            attributes=attributes,
            subscribed_ip=row.subscribed_ip,
            confirmed_at=row.confirmed_at,
            confirmed_ip=row.confirmed_ip,
            status_at=row.status_at,
            reason=None if row.reason is None else clean_text(row.reason),
            status_source=row.status_source and clean_text(row.status_source),
        )

    def _probe_groups(self, values: Sequence[str]) -> None:
        self._probe_rows -= 1
        for name, position in list(self._group_probe.items()):
            found, _ = self.mapper.topics(split_list(values[position]))
            if found:
                self.summary.group_like_columns.append(name)
                del self._group_probe[name]

    def _email(self, value: str) -> str:
        if not value:
            raise RowError("no email address")
        try:
            return normalize_address(value)
        except InvalidAddress as error:
            others = [d for d in (*DELIMITERS, "|") if d in value]
            if others:
                shown = DELIMITERS.get(others[0], repr(others[0]))
                raise RowError(
                    f"{clean_text(value)!r} holds several values separated by {shown}, but the "
                    "header uses another delimiter; use one delimiter throughout the file"
                ) from None
            raise RowError(clean_text(str(error))) from None

    def _topics(self, ids: str, tags: Sequence[str], suppressed: bool) -> tuple[str, ...]:
        """Topics from a topics column (unknown ones reject the row) and from tags (unknown
        ones are counted and left out). A suppressed row keeps whatever is known: its
        opt-out must never be lost to a topic."""
        topics = self._known_ids.get(ids)
        if topics is None:
            topics, complete = self._topic_ids(ids, suppressed)
            if complete:  # a list has few distinct topic cells: read each once
                self._known_ids[ids] = topics
        if tags:
            found, missing = self.mapper.topics(tags)
            topics += tuple(topic for topic in found if topic not in topics)
            if missing and not suppressed:
                self.summary.unmapped_tags = True
                self.summary.unknown_topics.update(dict.fromkeys(missing, 1))
        return topics

    def _topic_ids(self, ids: str, suppressed: bool) -> tuple[tuple[str, ...], bool]:
        topics = list(self.extra_topics)
        complete = True
        for piece in _TOPIC_SEPARATORS.split(ids):
            piece = clean_text(piece).strip()
            if not piece:
                continue
            topic = self.mapper.topic_for(piece)
            if topic is None and len(words := piece.split()) > 1:
                # "research stories": ids separated by spaces, if every one is an id
                found, missing = self.mapper.topics(words)
                if not missing:
                    topics.extend(t for t in found if t not in topics)
                    continue
            if topic is None:
                if suppressed:
                    complete = False
                    continue
                self.summary.unknown_topics[piece] += 1
                raise RowError(unknown_topic_message(piece, self.mapper.ordered))
            if topic and topic not in topics:
                topics.append(topic)
        return tuple(topics), complete


# -- the header -----------------------------------------------------------------


def _read_header(
    path: Path, header_line: str, delimiter: str, dry_run: bool, options: ImportOptions
) -> tuple[_Layout, ImportSummary]:
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
            if source_format.other_columns_as_attributes and key not in source_format.dropped:
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
    layout = _Layout(header, positions, tuple(attributes), source_format, kind)
    return layout, summary


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
