"""Importers for other services' exports: one small module per service.

:func:`choose_format` recognises an export by its header (``--from auto``) or takes
the one asked for; :mod:`newsletter.store.csv_import` reads the file with it. Plain
CSV is the fallback: any file with an email column. The import's parts that every
format shares are here too: :mod:`.header`, :mod:`.rows`, :mod:`.summary` and
:mod:`.bookkeeping`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from newsletter.errors import ImportFileError
from newsletter.store.importers.base import SourceFormat, SourceRow, column_key
from newsletter.store.importers.beehiiv import Beehiiv
from newsletter.store.importers.buttondown import Buttondown
from newsletter.store.importers.ghost import Ghost
from newsletter.store.importers.kit import Kit
from newsletter.store.importers.listmonk import Listmonk
from newsletter.store.importers.mailchimp import Mailchimp
from newsletter.store.importers.mailerlite import MailerLite
from newsletter.store.importers.plain import PlainCsv
from newsletter.store.importers.substack import Substack

FORMAT_NAMES = (
    "csv",
    "mailchimp",
    "substack",
    "buttondown",
    "ghost",
    "kit",
    "listmonk",
    "beehiiv",
    "mailerlite",
)

__all__ = ["FORMAT_NAMES", "SourceFormat", "SourceRow", "choose_format", "formats"]


def formats(group_columns: Sequence[str] = ()) -> dict[str, SourceFormat]:
    """Every format by name, most specific first (the order ``auto`` tries them in)."""
    found: list[SourceFormat] = [
        Mailchimp(group_columns),
        Substack(),
        Ghost(),
        Listmonk(),
        Buttondown(),
        Kit(),
        Beehiiv(),
        MailerLite(),
        PlainCsv(),
    ]
    return {source_format.name: source_format for source_format in found}


def choose_format(
    name: str, header: Sequence[str], path: Path, group_columns: Sequence[str] = ()
) -> tuple[SourceFormat, str]:
    """The format to read ``path`` with, and the kind of file it is."""
    keys = frozenset(column_key(column) for column in header)
    known = formats(group_columns)
    if name == "auto":
        for source_format in known.values():
            kind = source_format.recognise(keys, path)
            if kind is not None:
                return source_format, kind
    if name not in known:
        raise ImportFileError(
            f"unknown export format {name!r}; use one of: auto, {', '.join(known)}"
        )
    return known[name], known[name].kind(keys, path)
