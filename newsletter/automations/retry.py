"""``newsletter send STEP --retry-unknown`` / ``--retry-failed``: a step's readers whose
copy ended ``unknown`` (or ``failed``) sent again, as ``send ISSUE --retry-unknown`` /
``--retry-failed`` do for an issue's campaign.

A copy is ``unknown`` when the provider may have it: its answer was lost, or a run died
while the batch was out (the next run marks what it left ``in_flight`` so). ``run-due``
never sends those again on its own; after the editor has looked (the provider's
events, the outbox, the SMTP server's log), this sends each of them again, at the risk
of a duplicate each, in every version's campaign of the step, through the same
:func:`newsletter.automations.steps.send_version` as ``run-due`` (the lease, the
re-check at hand-over, the rate limits).

A copy is ``failed`` when the provider refused it for good (a rejected address, a
blocked domain). Once the editor fixed the cause, ``--retry-failed`` puts those copies
back as pending through the same ledger move as an issue's (``Ledger.requeue_failed``
inside :func:`newsletter.send.sending.send_campaign`): whoever bounced or left since is
skipped at hand-over.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from newsletter.automations.sequences import Step
from newsletter.automations.step_campaigns import StepVersion
from newsletter.automations.steps import Say, StepResult, send_version
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import Campaign
from newsletter.store import Store, open_store
from newsletter.store.automation_tables import automation_campaigns
from newsletter.store.schema import campaigns, ledger


@dataclass(frozen=True)
class Retry:
    """Which copies a retry sends again: ``--retry-unknown``, ``--retry-failed`` or both."""

    unknown: bool = False
    failed: bool = False

    @property
    def states(self) -> tuple[str, ...]:
        states: tuple[str, ...] = ()
        if self.unknown:  # in_flight: left by a run that died; the retry marks them unknown
            states += ("unknown", "in_flight")
        if self.failed:
            states += ("failed",)
        return states


def copies_to_retry(config: Config, step: Step, retry: Retry) -> dict[int, int]:
    """Per campaign (every version of the step), how many copies the retry sends again."""
    store = open_store(config)
    try:
        return _copies(store, step, retry)
    finally:
        store.close()


def retry_copies(config: Config, step: Step, retry: Retry, *, say: Say) -> list[StepResult]:
    """Send the step again to every reader whose copy is unknown (or failed, as
    ``retry`` asks); what became of each campaign that had any."""
    store = open_store(config)
    try:
        found = _copies(store, step, retry)
        version = StepVersion(config, step)
        return [
            send_version(
                config,
                store,
                step,
                version,
                campaign,
                say,
                retry_unknown=retry.unknown,
                retry_failed=retry.failed,
            )
            for campaign in _campaigns(store, sorted(found))
        ]
    finally:
        store.close()


def _copies(store: Store, step: Step, retry: Retry) -> dict[int, int]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ledger.c.campaign_id, func.count())
            .join(automation_campaigns, automation_campaigns.c.campaign_id == ledger.c.campaign_id)
            .where(
                automation_campaigns.c.automation == step.automation,
                automation_campaigns.c.step == step.key,
                ledger.c.state.in_(retry.states),
            )
            .group_by(ledger.c.campaign_id)
        ).all()
    return {campaign_id: count for campaign_id, count in rows}


def _campaigns(store: Store, ids: list[int]) -> list[Campaign]:
    with store.engine.connect() as connection:
        slugs = connection.scalars(
            select(campaigns.c.slug).where(campaigns.c.id.in_(ids)).order_by(campaigns.c.id)
        ).all()
    return [c for slug in slugs if (c := campaign_rows.find_campaign(store, slug)) is not None]
