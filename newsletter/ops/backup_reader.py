"""Reading a backup file (the format: :mod:`newsletter.ops.backup_file`): its header at
once, its tables as a stream, and the body checked against the header."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from newsletter.errors import StoreError
from newsletter.ops.backup_file import (
    FORMAT_VERSION,
    HEADER_BYTES,
    MAGIC,
    BackupError,
    BackupHeader,
    header_of,
)
from newsletter.store.table_dump import TableShape


class BackupReader:
    """A backup file opened for reading: its header at once, its tables as a stream.

    After :meth:`tables` has been read to the end, :meth:`verify` checks the body
    against the header (checksum, size, rows per table).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._raw: IO[bytes] = path.open("rb")
        except OSError as error:
            raise BackupError(f"cannot read the backup {path}: {error.strerror}") from None
        try:
            self.header = self._read_header()
        except BaseException:
            self._raw.close()
            raise
        self.schema_version = self.header.schema_version
        self.shapes = self.header.tables
        self.rows = self.header.rows
        self.last_ids = self.header.last_ids
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._read_rows: dict[str, int] = {}

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> BackupReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read_header(self) -> BackupHeader:
        block = self._raw.read(HEADER_BYTES)
        if not block.startswith(MAGIC):
            raise BackupError(
                f"{self.path} is not a newsletter backup (see 'newsletter db backup')"
            )
        try:
            data = orjson.loads(block[len(MAGIC) :])
        except orjson.JSONDecodeError:
            raise BackupError(f"{self.path}: the backup's header is damaged") from None
        if not isinstance(data, dict) or "body_sha256" not in data:
            raise BackupError(
                f"{self.path} is an unfinished backup (the backup stopped before its end); "
                "take a new one"
            )
        if data.get("format_version") != FORMAT_VERSION:
            raise BackupError(
                f"{self.path} is in backup format {data.get('format_version')!r}; this "
                f"program reads format {FORMAT_VERSION}: upgrade the newsletter package"
            )
        try:
            return header_of(data)
        except (KeyError, TypeError, ValueError, StoreError):
            raise BackupError(f"{self.path}: the backup's header is damaged") from None

    def tables(self) -> Iterator[tuple[TableShape, Iterable[list[Any]]]]:
        lines = self._lines()
        for shape in self.shapes:
            start = next(lines, None)
            if start != {"table": shape.name}:
                raise self._damaged(f"the rows of table {shape.name} are not where expected")
            yield shape, self._pages(shape, lines)
        if next(lines, None) is not None:
            raise self._damaged("it goes on after its last table")

    def _pages(self, shape: TableShape, lines: Iterator[Any]) -> Iterator[list[Any]]:
        width = len(shape.columns)
        count = 0
        for item in lines:
            if isinstance(item, dict):
                if item != {"end": shape.name, "rows": count}:
                    raise self._damaged(f"table {shape.name} does not end as it should")
                self._read_rows[shape.name] = count
                return
            if not isinstance(item, list) or not all(
                isinstance(row, list) and len(row) == width for row in item
            ):
                raise self._damaged(f"a row of table {shape.name} is not {width} values")
            count += len(item)
            yield item
        raise self._damaged(f"it ends inside table {shape.name}")

    def _lines(self) -> Iterator[Any]:
        self._raw.seek(HEADER_BYTES)
        body = gzip.GzipFile(fileobj=self._raw, mode="rb")
        try:
            for line in body:
                self._hash.update(line)
                self._bytes += len(line)
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise self._damaged("a line of it is not JSON") from None
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as error:
            raise self._damaged(f"it cannot be decompressed ({error})") from None

    def verify(self) -> None:
        if self._bytes != self.header.body_bytes or self._hash.hexdigest() != (
            self.header.body_sha256
        ):
            raise self._damaged("its checksum does not match its content")
        if self._read_rows != self.rows:
            raise self._damaged("its row counts do not match its header")

    def _damaged(self, what: str) -> BackupError:
        return BackupError(
            f"the backup {self.path} is damaged: {what}; nothing was restored. Use another "
            "backup (and check the disk or the copy that brought this one)"
        )
