"""The backup file: one format for SQLite and PostgreSQL, written and read as a stream
(:mod:`newsletter.ops.backup_writer`, :mod:`newsletter.ops.backup_reader`).

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

from dataclasses import dataclass
from typing import Any

import orjson

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


def header_of(data: dict[str, Any]) -> BackupHeader:
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
