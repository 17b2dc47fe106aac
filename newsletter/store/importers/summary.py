"""What an import is asked (:class:`ImportOptions`) and what it answers
(:class:`ImportSummary`, with a :class:`Rejected` line for each row it set aside)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


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
    # Columns no field reads are listed as ignored instead of kept as attributes.
    ignore_other_columns: bool = False
