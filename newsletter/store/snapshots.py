"""What each campaign sent, kept when it starts (migration 7).

The public site (web version, archive, feeds) and reports read these, never the issue
file as it is now: a correction made after sending must not rewrite the record, and a
new draft that reuses a sent issue's slug must not be served under it.

One row per campaign: the subject, the compiled HTML and text before personalisation
(markers still in), the issue file's text and its SHA-256, a hash of its title and
body (so ``send`` can notice a renamed file), and the local images it used with their
hashes. The row is written once and never updated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, Date, ForeignKey, String, Table, Text, select
from sqlalchemy.engine import Engine

from newsletter.errors import IssueFileError
from newsletter.models import CompiledIssue
from newsletter.render.front_matter import split_front_matter
from newsletter.store.schema import Id, UtcDateTime, campaigns, metadata
from newsletter.store.subscriber_rows import insert_ignoring_duplicates, now
from newsletter.store.subscribers import Store

issue_snapshots = Table(
    "issue_snapshots",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("slug", String(200), nullable=False),
    Column("issue_path", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("topics", JSON, nullable=False),
    Column("source", Text, nullable=False),  # the issue file's text as sent
    Column("source_hash", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False, index=True),  # title + body
    Column("html", Text, nullable=False),  # personalisation markers still in
    Column("text", Text, nullable=False),
    Column("assets", JSON, nullable=False),  # [{"path": relative to the root, "sha256": ...}]
    Column("created_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Asset:
    path: str  # relative to the newsletter folder, with forward slashes
    sha256: str


@dataclass(frozen=True)
class Snapshot:
    """An issue as its campaign sent it."""

    campaign_id: int
    slug: str
    issue_path: str
    title: str
    subject: str
    preheader: str
    date: dt.date
    topics: tuple[str, ...]
    source: str
    source_hash: str
    content_hash: str
    html: str
    text: str
    assets: tuple[Asset, ...]
    created_at: dt.datetime


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def content_hash(path: Path, title: str, source: str) -> str:
    """The same for two files with the same title and body, whatever their name, date
    or other front matter, and however their lines are wrapped."""
    try:
        _matter, body, _line = split_front_matter(path, source)
    except IssueFileError:
        body = source
    normalised = f"{' '.join(title.split())}\0{' '.join(body.split())}"
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot_row(compiled: CompiledIssue, source: str, root: Path) -> dict[str, Any]:
    """The values to store for ``compiled`` (read from ``source``), without its campaign."""
    issue = compiled.issue
    assets = []
    for path in compiled.assets:
        try:
            relative = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue  # the renderer refuses such images; nothing to keep
        assets.append({"path": relative, "sha256": file_hash(path)})
    return {
        "slug": issue.slug,
        "issue_path": str(issue.path),
        "title": issue.title,
        "subject": compiled.subject,
        "preheader": compiled.preheader,
        "issue_date": issue.date,
        "topics": list(issue.topics),
        "source": source,
        "source_hash": source_hash(source),
        "content_hash": content_hash(issue.path, issue.title, source),
        "html": compiled.html,
        "text": compiled.text,
        "assets": assets,
    }


def save_snapshot(store: Store | Engine, campaign_id: int, row: dict[str, Any]) -> Snapshot:
    """Keep what campaign ``campaign_id`` sends, unless it already has a snapshot (a
    resumed run, or another process a moment ago); either way, return the kept one."""
    engine = _engine(store)
    with engine.connect().execution_options(write=True) as connection, connection.begin():
        insert_ignoring_duplicates(
            connection,
            issue_snapshots,
            [{**row, "campaign_id": campaign_id, "created_at": now()}],
        )
    snapshot = find_snapshot(engine, campaign_id)
    assert snapshot is not None
    return snapshot


def find_snapshot(store: Store | Engine, campaign_id: int) -> Snapshot | None:
    with _engine(store).connect() as connection:
        row = connection.execute(
            select(issue_snapshots).where(issue_snapshots.c.campaign_id == campaign_id)
        ).one_or_none()
    return None if row is None else _snapshot(row)


def all_snapshots(store: Store | Engine) -> list[Snapshot]:
    """Every campaign's snapshot, in campaign order."""
    with _engine(store).connect() as connection:
        rows = connection.execute(
            select(issue_snapshots).order_by(issue_snapshots.c.campaign_id)
        ).all()
    return [_snapshot(row) for row in rows]


def same_content(store: Store | Engine, digest: str, *, other_than: str) -> list[tuple[str, int]]:
    """(slug, campaign id) of campaigns that sent this title and body under another slug."""
    with _engine(store).connect() as connection:
        rows = connection.execute(
            select(issue_snapshots.c.slug, issue_snapshots.c.campaign_id)
            .join(campaigns, campaigns.c.id == issue_snapshots.c.campaign_id)
            .where(issue_snapshots.c.content_hash == digest, issue_snapshots.c.slug != other_than)
            .order_by(issue_snapshots.c.campaign_id)
        ).all()
    return [(row.slug, row.campaign_id) for row in rows]


def _snapshot(row: Any) -> Snapshot:
    issue_date = row.issue_date
    if isinstance(issue_date, str):  # pragma: no cover - drivers return dates
        issue_date = dt.date.fromisoformat(issue_date)
    return Snapshot(
        campaign_id=row.campaign_id,
        slug=row.slug,
        issue_path=row.issue_path,
        title=row.title,
        subject=row.subject,
        preheader=row.preheader,
        date=issue_date,
        topics=tuple(row.topics),
        source=row.source,
        source_hash=row.source_hash,
        content_hash=row.content_hash,
        html=row.html,
        text=row.text,
        assets=tuple(Asset(item["path"], item["sha256"]) for item in row.assets),
        created_at=row.created_at,
    )


def _engine(store: Store | Engine) -> Engine:
    return store.engine if isinstance(store, Store) else store
