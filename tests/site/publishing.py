"""Publishing an issue the way ``newsletter send`` does when its campaign starts."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.snapshots import save_snapshot, snapshot_row

SEED_SLUG = "stem-cells-in-breast-milk"


def publish(config: Config, store: Store, path: Path) -> campaign_rows.Campaign:
    """Start the issue's campaign and keep its snapshot, as ``send`` does."""
    issue = read_issue(path, topics=config.topic_ids)
    compiled = compile_issue(issue, config)
    campaign = campaign_rows.start_campaign(
        store,
        slug=issue.slug,
        issue_path=str(path),
        subject=compiled.subject,
        topics=list(issue.topics),
        provider="outbox",
    )
    save_snapshot(store, campaign.id, snapshot_row(compiled, path.read_text("utf-8"), config.root))
    return campaign


def write_issue(config: Config, name: str, title: str, body: str, **matter: str) -> Path:
    path = config.issues_dir / name
    extra = "".join(f"{key}: {value}\n" for key, value in matter.items())
    path.write_text(f"---\ntitle: {title}\n{extra}---\n\n{body}\n", encoding="utf-8")
    return path
