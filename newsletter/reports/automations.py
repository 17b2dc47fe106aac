"""The report's automations: each step's campaigns (one per version of its file) summed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from newsletter.reports.figures import IssueReport
from newsletter.store import Store
from newsletter.store.automation_tables import automation_campaigns


@dataclass
class StepReport:
    """One step of a sequence, over every version of it that went out."""

    automation: str
    step: str
    versions: int
    recipients: int = 0
    handed_over: int = 0
    failed: int = 0
    unknown: int = 0
    pending: int = 0
    bounced: int = 0  # hard and soft
    bounced_hard: int = 0
    bounced_soft: int = 0
    complained: int = 0
    unsubscribed: int = 0  # through the step's own links
    opens: int | None = None
    clicks: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def step_reports(store: Store, issues: list[IssueReport]) -> list[StepReport]:
    """The rows of ``issues`` that are automation steps, summed per step."""
    with store.engine.connect() as connection:
        steps = {
            row.campaign_id: (row.automation, row.step)
            for row in connection.execute(select(automation_campaigns))
        }
    found: dict[tuple[str, str], StepReport] = {}
    for issue in issues:
        key = steps.get(issue.campaign_id)
        if key is None:
            continue
        step = found.setdefault(key, StepReport(*key, versions=0))
        step.versions += 1
        step.recipients += issue.recipients
        step.handed_over += issue.handed_over
        step.failed += issue.failed
        step.unknown += issue.unknown
        step.pending += issue.pending
        step.bounced += issue.bounced_hard + issue.bounced_soft
        step.bounced_hard += issue.bounced_hard
        step.bounced_soft += issue.bounced_soft
        step.complained += issue.complained
        step.unsubscribed += issue.unsubscribed
        if issue.opens is not None:
            step.opens = (step.opens or 0) + issue.opens
        if issue.clicks is not None:
            step.clicks = (step.clicks or 0) + issue.clicks
    return [found[key] for key in sorted(found)]
