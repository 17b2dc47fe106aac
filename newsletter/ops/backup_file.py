"""The backup file: one format for SQLite and PostgreSQL, written and read as a stream.

    NEWSLETTER BACKUP\\n                      the first line, always
    {header as JSON}  (spaces up to 64 KiB)  readable with `head -c 65536 FILE`
    gzip of the body                         one line per table start, page of rows, end

The header names the format version, the schema version, every table with its columns
(each with a kind, see :mod:`newsletter.store.table_dump`), its row count and the highest
id its sequence ever handed out, and the SHA-256 and size of the body before
compression. The body is written first and the header last, into the space kept for
it, then the file is renamed into place: a file under the final name is always
complete. Body lines::

    {"table": "subscribers"}
    [[1, "ann@example.org", ...], [2, ...], ...]      a page of rows, a few MB at most
    {"end": "subscribers", "rows": 2}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from newsletter import __version__
from newsletter.errors import StoreError
from newsletter.store.table_dump import KINDS, TableShape

MAGIC = b"NEWSLETTER BACKUP\n"
FORMAT_VERSION = 1
HEADER_BYTES = 64 * 1024
COMPRESS_LEVEL = 1  # the fastest: a million subscribers stream at disk speed


class BackupError(StoreError):
    """A backup file cannot be written, or is not a complete, intact backup."""


@dataclass(frozen=True)
class BackupHeader:
    schema_version: int
    tables: list[TableShape]
    rows: dict[str, int]
    last_ids: dict[str, int]
    body_sha256: str
    body_bytes: int
    created_at: str
    engine: str  # where it was taken: "sqlite" or "postgresql"
    written_by: str  # the newsletter version
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        """Indented for a reader of ``head``, one line per table."""
        fields = {
            "format_version": self.format_version,
            "schema_version": self.schema_version,
            "created_at": self.created_at,
            "engine": self.engine,
            "written_by": self.written_by,
            "compression": "gzip",
            "body_sha256": self.body_sha256,
            "body_bytes": self.body_bytes,
        }
        tables = [
            orjson.dumps(
                {
                    "name": shape.name,
                    "rows": self.rows[shape.name],
                    "last_id": self.last_ids.get(shape.name),
                    "key": list(shape.key),
                    "serial": shape.serial,
                    "columns": [list(column) for column in shape.columns],
                }
            )
            for shape in self.tables
        ]
        lines = [
            b'  "%s": %s,' % (key.encode(), orjson.dumps(value)) for key, value in fields.items()
        ]
        return (
            b"{\n"
            + b"\n".join(lines)
            + b'\n  "tables": [\n    '
            + b",\n    ".join(tables)
            + b"\n  ]\n}"
        )


# -- writing ---------------------------------------------------------------------------


@dataclass
class BackupWriter:
    """Writes a backup to ``path`` through a temporary file beside it.

    Use as a context manager: leaving it by an exception removes the temporary file,
    and whatever was at ``path`` before stays as it was.
    """

    path: Path
    _raw: IO[bytes] = field(init=False)
    _body: gzip.GzipFile = field(init=False)
    _hash: Any = field(init=False, default_factory=hashlib.sha256)
    _bytes: int = 0
    _shapes: list[TableShape] = field(default_factory=list)
    _rows: dict[str, int] = field(default_factory=dict)

    def __enter__(self) -> BackupWriter:
        folder = self.path.parent
        try:
            handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        except OSError as error:
            raise BackupError(f"cannot write a backup in {folder}: {error.strerror}") from None
        self._raw = os.fdopen(handle, "wb")
        self._temporary = Path(name)
        self._raw.write(_padded(MAGIC + b'{"complete": false}'))
        self._body = gzip.GzipFile(
            fileobj=self._raw, mode="wb", compresslevel=COMPRESS_LEVEL, mtime=0
        )
        return self

    def table(self, shape: TableShape, pages: Iterable[tuple[int, bytes]]) -> int:
        """Write one table's rows, given as (rows, JSON list of them) per page; the
        number written."""
        self._line(orjson.dumps({"table": shape.name}))
        count = 0
        for rows, page in pages:
            self._line(page)
            count += rows
        self._line(orjson.dumps({"end": shape.name, "rows": count}))
        self._shapes.append(shape)
        self._rows[shape.name] = count
        return count

    def _line(self, data: bytes) -> None:
        data += b"\n"
        self._hash.update(data)
        self._bytes += len(data)
        self._body.write(data)

    def finish(self, *, schema_version: int, last_ids: dict[str, int], engine: str) -> BackupHeader:
        """Write the header, make the file durable, and move it to its name."""
        self._body.close()
        header = BackupHeader(
            schema_version=schema_version,
            tables=self._shapes,
            rows=self._rows,
            last_ids=last_ids,
            body_sha256=self._hash.hexdigest(),
            body_bytes=self._bytes,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            engine=engine,
            written_by=__version__,
        )
        self._raw.seek(0)
        self._raw.write(_padded(MAGIC + header.to_json()))
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self._temporary, self.path)
        _sync_folder(self.path.parent)
        return header

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            return
        with contextlib.suppress(Exception):
            self._body.close()
        self._raw.close()
        self._temporary.unlink(missing_ok=True)


def _padded(header: bytes) -> bytes:
    if len(header) >= HEADER_BYTES:
        raise BackupError(
            f"the backup's header needs {len(header)} bytes, more than the {HEADER_BYTES} "
            "kept for it (too many tables); raise HEADER_BYTES in a new format version"
        )
    return header + b" " * (HEADER_BYTES - len(header) - 1) + b"\n"


def _sync_folder(folder: Path) -> None:
    # The rename itself survives a power cut only once the folder is written out.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- reading ---------------------------------------------------------------------------


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
            return _header_of(data)
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


def _header_of(data: dict[str, Any]) -> BackupHeader:
    shapes, rows, last_ids = [], {}, {}
    for table in data["tables"]:
        columns = tuple((str(name), str(kind)) for name, kind in table["columns"])
        if any(kind not in KINDS for _, kind in columns):
            raise ValueError("unknown column kind")
        shape = TableShape(
            name=str(table["name"]),
            columns=columns,
            key=tuple(str(name) for name in table["key"]),
            serial=None if table["serial"] is None else str(table["serial"]),
        )
        shapes.append(shape)
        rows[shape.name] = int(table["rows"])
        if table.get("last_id") is not None:
            last_ids[shape.name] = int(table["last_id"])
    return BackupHeader(
        schema_version=int(data["schema_version"]),
        tables=shapes,
        rows=rows,
        last_ids=last_ids,
        body_sha256=str(data["body_sha256"]),
        body_bytes=int(data["body_bytes"]),
        created_at=str(data["created_at"]),
        engine=str(data["engine"]),
        written_by=str(data["written_by"]),
    )
