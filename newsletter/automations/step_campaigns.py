"""A step's versions: the step file as it is now (:class:`StepVersion`, compiled and
checked once per run), each version's campaign, started empty with its snapshot, and
the campaigns that still have readers to send to."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError

from newsletter.automations.sequences import Step
from newsletter.config import Config
from newsletter.models import CompiledIssue
from newsletter.render.checks import Finding, check_compiled, config_findings
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import Campaign, write_connection
from newsletter.store import Store, snapshots
from newsletter.store.automation_tables import automation_campaigns
from newsletter.store.schema import campaigns, ledger


class StepVersion:
    """The step file as it is now, compiled and checked once per run, when needed."""

    def __init__(self, config: Config, step: Step) -> None:
        self.config = config
        self.step = step
        self._plan: tuple[CompiledIssue, list[Finding], dict[str, Any]] | None = None

    def compiled(self) -> tuple[CompiledIssue, list[Finding], dict[str, Any]]:
        if self._plan is None:
            config, step = self.config, self.step
            issue = read_issue(step.path, topics=config.topic_ids)
            compiled = compile_issue(replace(issue, slug=step.campaign_slug), config)
            findings = [*config_findings(config), *check_compiled(compiled, config)]
            source = step.path.read_text(encoding="utf-8")
            self._plan = compiled, findings, snapshots.snapshot_row(compiled, source, config.root)
        return self._plan

    def errors(self) -> list[Finding]:
        return [finding for finding in self.compiled()[1] if finding.level == "error"]


def version_campaign(store: Store, version: StepVersion) -> Campaign:
    """The campaign of the step file as it is now; started empty, with its snapshot,
    if this version is new. (Another process starting it at the same moment: theirs.)"""
    step = version.step
    found = campaign_rows.find_campaign(store, step.campaign_slug)
    if found is not None:
        return found
    compiled, _findings, snapshot_row = version.compiled()
    try:
        with write_connection(store.engine) as connection, connection.begin():
            campaign_id = connection.scalar(
                insert(campaigns)
                .values(
                    slug=step.campaign_slug,
                    issue_path=str(step.path),
                    subject=compiled.subject,
                    topics=list(step.topics),
                    provider=version.config.provider,
                    recipients=0,
                    created_at=campaign_rows.now(),
                )
                .returning(campaigns.c.id)
            )
            connection.execute(
                insert(automation_campaigns).values(
                    campaign_id=campaign_id, automation=step.automation, step=step.key
                )
            )
            # What this version sends, kept before anyone is added to it.
            connection.execute(
                insert(snapshots.issue_snapshots).values(
                    **snapshot_row, campaign_id=campaign_id, created_at=campaign_rows.now()
                )
            )
    except IntegrityError:
        pass
    found = campaign_rows.find_campaign(store, step.campaign_slug)
    assert found is not None
    return found


def campaigns_with_work(store: Store, step: Step) -> list[Campaign]:
    """The step's campaigns (any version) with readers pending or left in flight."""
    with store.engine.connect() as connection:
        ids = connection.scalars(
            select(automation_campaigns.c.campaign_id)
            .join(campaigns, campaigns.c.id == automation_campaigns.c.campaign_id)
            .where(
                automation_campaigns.c.automation == step.automation,
                automation_campaigns.c.step == step.key,
                campaigns.c.finished_at.is_(None),
                exists().where(
                    ledger.c.campaign_id == automation_campaigns.c.campaign_id,
                    ledger.c.state.in_(("pending", "in_flight")),
                ),
            )
            .order_by(automation_campaigns.c.campaign_id)
        ).all()
        slugs = connection.scalars(
            select(campaigns.c.slug).where(campaigns.c.id.in_(ids)).order_by(campaigns.c.id)
        ).all()
    return [c for slug in slugs if (c := campaign_rows.find_campaign(store, slug)) is not None]
