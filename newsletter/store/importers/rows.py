"""One record of an import file read into a :class:`Candidate`, or the reason it is
rejected: the format reads the cells, this checks the address, the topics and the
row's shape, and cleans every text of control characters."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from newsletter.models import SUPPRESSED_STATUSES
from newsletter.safe_text import clean_text
from newsletter.store.addresses import InvalidAddress, normalize_address
from newsletter.store.bulk_plan import Candidate
from newsletter.store.csv_reader import DELIMITERS, Lines, Record, looks_like_a_row, records
from newsletter.store.importers.base import (
    AttributesOverLimits,
    RowError,
    json_attributes,
    split_list,
    unneutralize,
)
from newsletter.store.importers.header import Layout
from newsletter.store.importers.limits import (
    JSON_CELL_WORTH_READING,
    MAX_ATTRIBUTE_VALUE,
    json_cell_over_limits,
    value_too_long,
)
from newsletter.store.importers.summary import ImportSummary, Rejected
from newsletter.store.importers.topics import TopicMapper
from newsletter.store.subscriber_rows import unknown_topic_message

GROUP_PROBE_ROWS = 1000  # rows whose attribute values are looked at for interest groups
# Fields that never hold a line break: one that does was opened by a stray quote.
KEY_FIELDS = ("email", "name", "first_name", "last_name", "topics", "status")
_TOPIC_SEPARATORS = re.compile(r"[,;|]+")


def swallowed_rows(record: Record, layout: Layout, delimiter: str) -> bool:
    """Whether a record over several lines was opened by a stray quote and swallowed
    rows (its lines are then read again on their own), rather than holding a note."""
    fields = {
        name: record.values[position]
        for name, position in layout.positions.items()
        if position < len(record.values)
    }
    if any("\n" in fields.get(name, "") or "\r" in fields.get(name, "") for name in KEY_FIELDS):
        return True
    email_position = layout.positions["email"]
    columns = len(layout.header)
    return any(
        looks_like_a_row(line, delimiter, email_position, columns) for _, line in record.lines[1:]
    )


def check_attribute_values(path: Path, encoding: str, layout: Layout, delimiter: str) -> None:
    """Read the file once before importing anything: a value too long for an attribute,
    or a JSON cell of attributes over a limit, stops the import with its line and column,
    so nothing is half-imported.

    The records are read as the import reads them (the same reader, rows swallowed by a
    stray quote read again on their own lines), so the line named is the import's."""
    json_field = layout.source_format.json_attributes_field
    json_position = layout.positions.get(json_field) if json_field else None
    if not layout.attributes and json_position is None:
        return
    json_column = layout.header[json_position] if json_position is not None else ""
    with path.open(encoding=encoding, newline="") as file:
        lines = Lines(file)
        lines.first_nonblank()  # the header
        for record in records(lines, delimiter):
            if record.error:
                continue  # rejected on its own by the import
            if record.spans_lines and swallowed_rows(record, layout, delimiter):
                lines.read_again(list(record.lines[1:]))  # as the import does
                continue
            values = record.values
            for name, position in layout.attributes:
                if position >= len(values) or len(values[position]) <= MAX_ATTRIBUTE_VALUE:
                    continue
                if len(value := values[position].strip()) > MAX_ATTRIBUTE_VALUE:
                    raise value_too_long(path, record.line, name, position, len(value))
            if (
                json_position is not None
                and json_position < len(values)
                and len(values[json_position]) >= JSON_CELL_WORTH_READING
            ):
                try:
                    json_attributes(unneutralize(values[json_position].strip()), json_field)
                except AttributesOverLimits as error:
                    problem = str(error).removeprefix(f"{json_field} ")
                    raise json_cell_over_limits(
                        path, record.line, json_column, json_position, problem
                    ) from None
                except RowError:
                    continue  # not a JSON object: that row's rejection, on its own


class RowReader:
    """One record's values to a :class:`Candidate`, or the reason it is rejected."""

    def __init__(
        self,
        layout: Layout,
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
        if record.spans_lines and swallowed_rows(record, self.layout, self.delimiter):
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
