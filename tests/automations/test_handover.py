"""The re-check at hand-over: a reader added to a step's campaign who leaves before the
step is handed to the provider is skipped, like a campaign's recipient."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from newsletter.automations.steps import run_due_steps
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import sendgrid  # noqa: F401

pytestmark = pytest.mark.usefixtures("on_both")


def test_a_reader_who_leaves_while_the_step_waits_for_the_provider_is_skipped(
    welcome: Config,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    store: Store,
) -> None:
    config = configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url})
    stays = store.add("stays@example.org")
    leaves = store.add("leaves@example.org")
    sendgrid.fail_next(503, times=4)  # down for a run: the step is paused, both pending

    [paused] = run_due_steps(config)
    store.unsubscribe(leaves.id, source="test")
    [sent] = run_due_steps(config)

    assert paused.outcome == "stopped"
    assert sent.outcome == "sent", sent.message
    assert sendgrid.received_by() == {"stays@example.org": 1}
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["skipped"], counts["pending"]) == (1, 1, 0)
    assert stays.id != leaves.id
