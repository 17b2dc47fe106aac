"""What the report holds: each campaign's figures (:class:`IssueReport`), the list week
by week (:class:`ListWeek`) and the whole (:class:`Report`), as the formats write them."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class LinkCount:
    url: str
    clicks: int


class ProviderLinkCount(LinkCount):
    """A link's clicks as a provider counted them (already in the campaign's click total)."""


UNIQUE_UNKNOWN = "n/a (tracking.per_subscriber is off)"


@dataclass
class IssueReport:
    """One campaign, as the editor sees it."""

    slug: str
    subject: str
    campaign_id: int
    started: dt.datetime
    provider: str
    recipients: int
    handed_over: int  # the provider accepted it
    failed: int
    unknown: int
    pending: int
    skipped: int
    bounced_hard: int
    bounced_soft: int
    complained: int  # within AFTER_DAYS, by recipients of this campaign
    unsubscribed: int  # through this campaign's links (or its mailto)
    unsubscribed_within_7_days: int  # any way, by its recipients, within AFTER_DAYS
    tracked: bool  # clicks/opens were counted for it
    opens: int | None = None
    clicks: int | None = None
    unique_opens: int | None = None  # readers: a provider's tracking, or per_subscriber
    unique_clicks: int | None = None
    # Why the unique counts are None although tracked ("" when they are known).
    unique_note: str = ""
    top_links: list[LinkCount] = field(default_factory=list)
    # Copies a receiving server refused for their content or the sender (a policy
    # block read from the mailbox): failed, and nobody suppressed.
    blocked: int = 0
    # Its subject test, each subject's figures and the winner: a
    # newsletter.reports.subject_tests.SubjectTestReport, or None.
    subject_test: Any = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started"] = self.started.isoformat()
        data["subject_test"] = self.subject_test.as_dict() if self.subject_test else None
        return data


@dataclass(frozen=True)
class ListWeek:
    """The list at the end of a week (Monday ``week``), and who joined that week."""

    week: dt.date
    active: int
    pending: int
    unsubscribed: int
    bounced: int
    complained: int
    joined: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "week": self.week.isoformat()}


@dataclass
class Report:
    issues: list[IssueReport]
    weeks: list[ListWeek]
    sources: dict[str, int]  # new subscribers by source, over the whole list
    # Each automation step, its versions' campaigns (also in ``issues``) summed: a
    # newsletter.reports.automations.StepReport each.
    automations: list[Any] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "issues": [issue.as_dict() for issue in self.issues],
            "automations": [step.as_dict() for step in self.automations],
            "list_by_week": [week.as_dict() for week in self.weeks],
            "new_subscribers_by_source": self.sources,
        }
