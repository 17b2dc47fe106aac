"""What an import keeps track of as it goes: the line each address was first on (to
name duplicates) and the rejects file."""

from __future__ import annotations

import csv
import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from newsletter.store.csv_export import neutralize
from newsletter.store.importers.summary import Rejected


class SeenAddresses:
    """Which address the file had on which line, to name duplicates.

    Kept in a private temporary SQLite file, not a dict: for a million rows a dict
    of addresses takes over 100 MB, half the memory budget. Only a 16-byte hash of
    each address is stored, and the file is deleted when the import ends.
    """

    def __enter__(self) -> SeenAddresses:
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


class RejectsFile:
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

    def __enter__(self) -> RejectsFile:
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
