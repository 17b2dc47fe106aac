"""``newsletter send STEP --retry-unknown``: a step's readers whose copy ended ``unknown``
sent again, as ``send ISSUE --retry-unknown`` does for an issue's campaign.

A copy is ``unknown`` when the provider may have it: its answer was lost, or a run died
while the batch was out (the next run marks what it left ``in_flight`` so). ``run-due``
never sends those again on its own; after the editor has looked (the provider's
events, the outbox, the SMTP server's log), this sends each of them again, at the risk
of a duplicate each, in every version's campaign of the step, through the same
:func:`newsletter.automations.steps.send_version` as ``run-due`` (the lease, the
re-check at hand-over, the rate limits).
"""

from __future__ import annotations

from sqlalchemy import func, select

from newsletter.automations.sequences import Step
from newsletter.automations.steps import Say, StepResult, StepVersion, send_version
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.campaign_rows import Campaign
from newsletter.store import Store, open_store
from newsletter.store.automation_tables import automation_campaigns
from newsletter.store.schema import campaigns, ledger

# in_flight: left by a run that died; the run that retries marks them unknown first.
_UNSETTLED = ("unknown", "in_flight")


def unknown_copies(config: Config, step: Step) -> dict[int, int]:
    """Per campaign (every version of the step), how many copies are unknown."""
    store = open_store(config)
    try:
        return _unknown_copies(store, step)
    finally:
        store.close()


def retry_unknown(config: Config, step: Step, *, say: Say) -> list[StepResult]:
    """Send the step again to every reader whose copy is unknown; what became of each
    campaign that had any."""
    store = open_store(config)
    try:
        found = _unknown_copies(store, step)
        version = StepVersion(config, step)
        return [
            send_version(config, store, step, version, campaign, say, retry_unknown=True)
            for campaign in _campaigns(store, sorted(found))
        ]
    finally:
        store.close()


def _unknown_copies(store: Store, step: Step) -> dict[int, int]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(ledger.c.campaign_id, func.count())
            .join(automation_campaigns, automation_campaigns.c.campaign_id == ledger.c.campaign_id)
            .where(
                automation_campaigns.c.automation == step.automation,
                automation_campaigns.c.step == step.key,
                ledger.c.state.in_(_UNSETTLED),
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
