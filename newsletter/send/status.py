"""How campaigns went (``newsletter status``): each campaign's ledger counts, first
errors, reactions and hand-overs, and how its unknown recipients get settled."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from newsletter.config import Config
from newsletter.render.issues import ISSUE_NAME
from newsletter.send import campaign_rows, subject_test
from newsletter.send.handovers import handovers
from newsletter.store import open_store
from newsletter.store.returns import blocked_copies

EVENT_SOURCES = {
    "sendgrid": "SendGrid's Event Webhook settles them as its events arrive",
    "postmark": "Postmark's webhooks settle them as its delivery and bounce records arrive",
    "mailgun": "Mailgun's webhooks settle them as its delivered and failed events arrive",
    "ses": "SES's events (through SNS) settle them as they arrive",
}


def unknown_hint(provider: str) -> str:
    """How a campaign's ``unknown`` recipients get settled with this provider."""
    if provider in EVENT_SOURCES:
        return (
            f"{EVENT_SOURCES[provider]}; --retry-unknown resends the rest (at the risk of a "
            "duplicate each)"
        )
    where = "the outbox folder" if provider == "outbox" else "the SMTP server's log"
    return (
        f"{provider} reports no events: look them up in {where} (at most one per "
        "connection), then --retry-unknown resends them (at the risk of a duplicate each)"
    )


@dataclass(frozen=True)
class CampaignStatus:
    campaign: campaign_rows.Campaign
    counts: dict[str, int]
    first_errors: list[tuple[str, str]]  # (address, error)
    reactions: dict[str, int]  # see campaign_rows.reactions
    handovers: dict[str, int] = field(default_factory=dict)  # provider -> handed over
    blocked: int = 0  # copies refused as a policy block (failed; nobody suppressed)
    # A subject test's winner in words, or when the rest goes ("" for no test).
    subject_test: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_test": self.subject_test or None,
            **asdict(self.campaign),
            "counts": self.counts,
            "blocked": self.blocked,
            "first_errors": [{"to": who, "error": error} for who, error in self.first_errors],
            "reactions": self.reactions,
            "handed_over": self.handovers,
        }


def campaign_status(config: Config, issue: str | None = None) -> list[CampaignStatus]:
    """Every campaign, or the one of ``issue`` (an issue file or its slug)."""
    store = open_store(config)
    try:
        campaigns = campaign_rows.list_campaigns(store)
        if issue is not None:
            slug = slug_of(issue)
            campaigns = [campaign for campaign in campaigns if campaign.slug == slug]
        return [
            CampaignStatus(
                campaign,
                campaign_rows.state_counts(store, campaign.id),
                campaign_rows.first_errors(store, campaign.id),
                campaign_rows.reactions(store, campaign.id),
                handovers(store, campaign.id),
                blocked_copies(store, campaign.id),
                _subject_test(store, campaign.id),
            )
            for campaign in campaigns
        ]
    finally:
        store.close()


def _subject_test(store: Any, campaign_id: int) -> str:
    test = subject_test.find_test(store, campaign_id)
    return "" if test is None else subject_test.why(test)


def slug_of(issue: str) -> str:
    """The campaign key of an issue file name (date prefix dropped) or of a bare slug."""
    name = ISSUE_NAME.fullmatch(Path(issue).stem)
    return name["slug"] if name else Path(issue).stem
