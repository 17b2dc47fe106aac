"""``subscribers import`` of one file: a CSV, or a ZIP of CSVs (Mailchimp's audience export).

A ZIP's CSV files are extracted to a private temporary folder, by their names only
(never by the paths stored in the archive), and imported one after the other, the
opt-out files first, so that an address listed in two files stays suppressed. Each
file gets its own summary, and its rejects go beside the ZIP. A dry run of a ZIP
reports what the run will do: each file sees what the earlier ones would have written
(:mod:`newsletter.store.dry_run`).
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from newsletter.errors import ImportFileError
from newsletter.store.csv_import import ImportOptions, ImportSummary, Progress, import_csv
from newsletter.store.dry_run import DryRun
from newsletter.store.subscribers import Store

# The order a Mailchimp ZIP's files are imported in: opt-outs first.
_ZIP_ORDER = ("unsubscribed", "cleaned", "subscribed", "nonsubscribed")


def import_file(
    store: Store,
    path: Path,
    options: ImportOptions,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[ImportSummary]:
    """Import a CSV export, or every CSV in a ZIP export (Mailchimp's audience export)."""
    if path.suffix.lower() != ".zip" or not zipfile.is_zipfile(path):
        return [import_csv(store, path, options, dry_run=dry_run, progress=progress)]
    summaries: list[ImportSummary] = []
    planned = DryRun() if dry_run else None  # what the earlier files would have written
    with tempfile.TemporaryDirectory(prefix="newsletter-import-") as folder:
        members = _zip_members(path, Path(folder))
        for number, member in enumerate(members, start=1):
            if planned is not None:
                planned.remember = number < len(members)
            summaries.append(
                import_csv(
                    store,
                    member,
                    options,
                    dry_run=dry_run,
                    progress=progress,
                    rejects_path=path.with_name(f"{path.stem}.{member.stem}.rejects.csv"),
                    source=f"import:{path.name}/{member.name}",
                    planned=planned,
                )
            )
    return summaries


def _zip_members(path: Path, folder: Path) -> list[Path]:
    """The ZIP's CSV files, extracted (by name only, never by their stored paths)."""
    extracted: list[Path] = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = Path(info.filename).name
            if info.is_dir() or not name.lower().endswith(".csv") or name.startswith("."):
                continue
            target = folder / name
            if target.exists():  # the same name in two folders of the archive
                target = folder / f"{len(extracted)}-{name}"
            with archive.open(info) as source, target.open("wb") as out:
                while block := source.read(1 << 20):
                    out.write(block)
            extracted.append(target)
    if not extracted:
        raise ImportFileError(f"{path} holds no CSV file; give the export's CSV or its ZIP")

    def order(member: Path) -> tuple[int, str]:
        lowered = member.name.lower()
        rank = next((n for n, word in enumerate(_ZIP_ORDER) if lowered.startswith(word)), 9)
        return rank, lowered

    return sorted(extracted, key=order)
