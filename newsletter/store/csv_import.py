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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from newsletter.errors import ImportFileError, StoreError
from newsletter.models import SUBSCRIBER_STATUSES
from newsletter.store.addresses import address_key
from newsletter.store.bulk_plan import Candidate
from newsletter.store.csv_reader import Lines, Record, check_encoding, records, sniff_delimiter
from newsletter.store.database import analyze
from newsletter.store.dry_run import DryRun
from newsletter.store.importers.bookkeeping import RejectsFile, SeenAddresses
from newsletter.store.importers.header import read_header
from newsletter.store.importers.rows import RowReader, check_attribute_values
from newsletter.store.importers.summary import ImportOptions, ImportSummary, Rejected
from newsletter.store.importers.topics import TopicMapper
from newsletter.store.schema import subscriber_topics, subscribers
from newsletter.store.subscribers import Store

__all__ = [
    "CHUNK_SIZE",
    "ImportOptions",
    "ImportSummary",
    "Progress",
    "import_csv",
    "rejects_path_for",
]

CHUNK_SIZE = 1000
SHOWN_REJECTS = 20  # rejects kept in the summary for display; all go to the rejects file

Progress = Callable[[int, int], None]  # (bytes read so far, file size)


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
    rejects = RejectsFile(rejects_path or rejects_path_for(path), enabled=not dry_run)
    with path.open(encoding=encoding, newline="") as file, rejects, SeenAddresses() as seen:
        lines = Lines(file)
        header_line = lines.first_nonblank()
        if header_line is None:
            raise ImportFileError(
                f"{path} is empty; a subscribers CSV starts with a header line "
                "such as: email,name,topics"
            )
        delimiter = options.delimiter or sniff_delimiter(header_line)
        layout, summary = read_header(path, header_line, delimiter, dry_run, options)
        check_attribute_values(path, encoding, layout, delimiter)  # before any write
        rejects.header = layout.header
        rows = RowReader(
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
    seen: SeenAddresses,
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
