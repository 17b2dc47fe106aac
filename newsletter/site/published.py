"""The issues that went out, as their campaigns sent them, newest first."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.models import Issue
from newsletter.render.issues import issue_slug, list_issues, parse_issue
from newsletter.send.campaign_rows import Campaign, list_campaigns
from newsletter.store import Store
from newsletter.store.automation_tables import automation_campaign_ids
from newsletter.store.snapshots import Snapshot, all_snapshots, content_hash, source_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishedIssue:
    """One sent issue: its snapshot, and the issue read back from the snapshot's text."""

    snapshot: Snapshot
    issue: Issue

    @property
    def slug(self) -> str:
        return self.snapshot.slug

    @property
    def sent_at(self) -> dt.datetime:
        return self.snapshot.created_at


def published_issues(config: Config, store: Store) -> list[PublishedIssue]:
    """Every issue with a campaign, newest first (by issue date, then by sending time);
    not the steps of automations.

    A campaign started before snapshots were kept (migration 7) is shown from its
    issue file, if that still reads; an issue whose text no longer parses (a topic
    removed from the config since) is left out and logged.
    """
    snapshots = {snapshot.campaign_id: snapshot for snapshot in all_snapshots(store)}
    automated = automation_campaign_ids(store.engine)  # welcome mails are no issues
    published = []
    for campaign in list_campaigns(store):
        if campaign.id in automated:
            continue
        snapshot = snapshots.get(campaign.id) or _from_file(campaign, config)
        if snapshot is None:
            continue
        try:
            topics = (*config.topic_ids, *snapshot.topics)
            issue = _parse(snapshot.issue_path, snapshot.source, topics)
        except NewsletterError as error:
            log.error("issue %r left out of the site: %s", snapshot.slug, error)
            continue
        published.append(PublishedIssue(snapshot, issue))
    published.sort(key=lambda item: (item.issue.date, item.sent_at), reverse=True)
    return published


@functools.lru_cache(maxsize=4096)
def _parse(path: str, source: str, topics: tuple[str, ...]) -> Issue:
    # Snapshots never change: ``serve`` makes its site again when a campaign starts and
    # need not read every earlier issue again (three quarters of a build's time).
    return parse_issue(Path(path), source, topics=topics, plain_text=False)


def _from_file(campaign: Campaign, config: Config) -> Snapshot | None:
    """A stand-in snapshot for a campaign older than snapshots: its file as it is now."""
    path = Path(campaign.issue_path)
    if not path.is_absolute():
        path = config.root / path
    if not path.is_file():  # renamed since: the newest file of the slug, as before
        path = next(
            (
                found
                for found in list_issues(config.issues_dir)
                if issue_slug(found) == campaign.slug
            ),
            path,
        )
    try:
        source = path.read_text(encoding="utf-8")
        issue = parse_issue(path, source, topics=config.topic_ids)
    except (OSError, UnicodeDecodeError, NewsletterError):
        log.warning("campaign %s has no snapshot and its file %s does not read", campaign.id, path)
        return None
    return Snapshot(
        campaign_id=campaign.id,
        slug=campaign.slug,
        issue_path=str(path),
        title=issue.title,
        subject=issue.subject,
        preheader=issue.preheader,
        date=issue.date,
        topics=issue.topics,
        source=source,
        source_hash=source_hash(source),
        content_hash=content_hash(path, issue.title, source),
        html="",
        text="",
        assets=(),
        created_at=campaign.created_at,
    )


def image_path(config: Config, folder: Path, src: str) -> str:
    """Where a local image lives below the newsletter folder (a URL-quoted relative
    path; ``src`` is relative to ``folder``), or ``src`` itself when it is an http(s)
    URL; "" for a path outside the newsletter folder.

    Unlike the mail renderer this does not require the file: the page of an issue sent
    long ago still renders if an image was moved since (the export reports it missing).
    """
    if urlsplit(src).scheme in ("http", "https"):
        return src
    path = (folder / src).resolve()
    try:
        relative = path.relative_to(config.root.resolve())
    except ValueError:
        return ""
    return quote(relative.as_posix())
