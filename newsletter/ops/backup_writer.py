"""Writing a backup file (the format: :mod:`newsletter.ops.backup_file`): the body as
it is read, the header last into the space kept for it, then the file renamed into
place."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson

from newsletter import __version__
from newsletter.ops.backup_file import (
    COMPRESS_LEVEL,
    HEADER_BYTES,
    MAGIC,
    BackupError,
    BackupHeader,
)
from newsletter.store.table_dump import TableShape


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
