"""Where a campaign's mail went: its provider (``send --switch-provider`` changes it)
and ``campaign_handovers``, per campaign and provider, how many messages were handed
over (the ledger counts them with each batch's outcomes; ``newsletter status`` shows
them, so a resumed campaign cannot hide where its mail went)."""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from newsletter.store import Store
from newsletter.store.schema import campaign_handovers, campaigns


def count_handovers(connection: Connection, campaign_id: int, provider: str, count: int) -> None:
    """Count ``count`` more messages handed to ``provider`` for the campaign, in the
    caller's transaction (the ledger writes a batch's outcomes and its hand-overs in one)."""
    if count <= 0:
        return
    changed = connection.execute(
        update(campaign_handovers)
        .where(
            campaign_handovers.c.campaign_id == campaign_id,
            campaign_handovers.c.provider == provider,
        )
        .values(count=campaign_handovers.c.count + count)
    ).rowcount
    if not changed:
        connection.execute(
            campaign_handovers.insert().values(
                campaign_id=campaign_id, provider=provider, count=count
            )
        )


def handovers(store: Store, campaign_id: int) -> dict[str, int]:
    """``provider -> messages handed over`` for one campaign."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(campaign_handovers.c.provider, campaign_handovers.c.count)
            .where(campaign_handovers.c.campaign_id == campaign_id)
            .order_by(campaign_handovers.c.provider)
        )
        return {provider: count for provider, count in rows}


def set_campaign_provider(store: Store, campaign_id: int, provider: str) -> None:
    """The campaign goes on through ``provider`` (``newsletter send --switch-provider``)."""
    with store.engine.connect() as connection:
        connection.execution_options(write=True)
        with connection.begin():
            connection.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(provider=provider)
            )
