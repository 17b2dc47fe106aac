"""``newsletter send STEP --retry-unknown``: a step's copies whose answer was lost are
sent again when the editor asks, never by ``run-due`` on its own (both databases, the
local SendGrid stand-in)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import sendgrid  # noqa: F401

pytestmark = pytest.mark.usefixtures("on_both")

STEP = "automations/welcome/01-thanks.md"


def test_a_steps_unknown_copies_are_sent_again_only_when_asked(
    welcome: Config,
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
    subscribers(30)
    sendgrid.normal_next()
    sendgrid.drop_next(deliver=False)  # the second batch's answer is lost (and not sent)

    first = runner.invoke(cli, ["run-due"])
    again = runner.invoke(cli, ["run-due"])  # never resends an unknown copy on its own

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert len(sendgrid.received_by()) == 20
    [campaign] = campaign_rows.list_campaigns(store)
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"]) == (20, 10)

    refused = runner.invoke(cli, ["send", STEP, "--yes"])
    assert refused.exit_code == 1
    assert "--retry-unknown sends it again to the readers whose copy is unknown" in (refused.output)

    asked = runner.invoke(cli, ["send", STEP, "--retry-unknown"], input="n\n")
    assert asked.exit_code == 1
    assert asked.output.startswith(
        "welcome/01-thanks: send it again to 10 reader(s) whose copy is unknown (each may "
        "get it twice)? [y/N]: n\nAborted!"
    )
    assert len(sendgrid.received_by()) == 20

    retried = runner.invoke(cli, ["send", STEP, "--retry-unknown", "--yes"])

    assert retried.exit_code == 0, retried.output
    assert retried.output.splitlines() == [
        f"welcome/01-thanks: sending to 10 reader(s) through sendgrid (campaign {campaign.id})",
        f"welcome/01-thanks: campaign {campaign.id}: sent 10, failed 0, skipped 0, unknown 0",
    ]
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(30)}
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (30, 0, 0)

    nothing = runner.invoke(cli, ["send", STEP, "--retry-unknown", "--yes"])
    assert (nothing.exit_code, nothing.output) == (
        0,
        "welcome/01-thanks: no reader's copy is unknown; nothing to send again.\n",
    )
    assert len(sendgrid.received_by()) == 30
