"""``newsletter send STEP --retry-failed``: a step's copies the provider refused are sent
again once the editor fixed the cause, as ``send ISSUE --retry-failed`` does, and never
by ``run-due`` on its own (both databases, the local SMTP stand-in)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import smtp_server  # noqa: F401
from tests.send.test_smtp import smtp_config

pytestmark = pytest.mark.usefixtures("on_both")

STEP = "automations/welcome/01-thanks.md"


def test_a_steps_failed_copies_are_sent_again_when_asked_except_to_who_bounced(
    welcome: Config,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,  # noqa: F811
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
) -> None:
    smtp_config(configure, smtp_server)
    subscribers(3)
    smtp_server.refuse("reader1@example.org", "552 5.2.2 Mailbox full")
    smtp_server.refuse("reader2@example.org", "550 5.1.1 No such user")  # bounced for good

    first = runner.invoke(cli, ["run-due"])
    smtp_server.script.refused.clear()  # the mailbox has room again
    again = runner.invoke(cli, ["run-due"])  # never resends a failed copy on its own

    assert (first.exit_code, again.exit_code) == (0, 0), first.output + again.output
    assert smtp_server.received_by() == {"reader0@example.org": 1}
    [campaign] = campaign_rows.list_campaigns(store)
    assert campaign_rows.state_counts(store, campaign.id)["failed"] == 2

    refused = runner.invoke(cli, ["send", STEP, "--yes"])
    assert refused.exit_code == 1
    assert "--retry-failed to those whose copy failed" in refused.output

    asked = runner.invoke(cli, ["send", STEP, "--retry-failed"], input="n\n")
    assert asked.exit_code == 1
    assert asked.output.startswith(
        "welcome/01-thanks: send it again to 2 reader(s) whose copy failed? [y/N]: n\nAborted!"
    )
    assert smtp_server.received_by() == {"reader0@example.org": 1}

    retried = runner.invoke(cli, ["send", STEP, "--retry-failed", "--yes"])

    assert retried.exit_code == 0, retried.output
    assert retried.output.splitlines() == [
        f"welcome/01-thanks: sending to 2 reader(s) through smtp (campaign {campaign.id})",
        f"welcome/01-thanks: campaign {campaign.id}: sent 1, failed 0, skipped 1, unknown 0",
    ]
    # reader2's address does not exist: they bounced, and are left out.
    assert smtp_server.received_by() == {"reader0@example.org": 1, "reader1@example.org": 1}
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["failed"], counts["skipped"]) == (2, 0, 1)

    nothing = runner.invoke(cli, ["send", STEP, "--retry-failed", "--yes"])
    assert (nothing.exit_code, nothing.output) == (
        0,
        "welcome/01-thanks: no reader's copy failed; nothing to send again.\n",
    )
    assert len(smtp_server.arrivals) == 2
