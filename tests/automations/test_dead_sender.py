"""A step whose campaign lease names a sender that has died on this machine.

While that process lives, ``run-due`` leaves the step to it ("busy"); once it is gone,
its lease is no one's, as for an issue's campaign: the next ``run-due`` sends the
step, or holds it with the real reason, never "another process is sending it".
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.automations.sequences import read_sequences
from newsletter.automations.step_campaigns import StepVersion, version_campaign
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store
from tests.automations.test_steps import received
from tests.send.test_ledger import set_lease

pytestmark = pytest.mark.usefixtures("on_both")


@pytest.fixture
def sender_died(welcome: Config, store: Store, runner: CliRunner) -> int:
    """Ada and Bob are due the welcome step, whose campaign's lease is held by another
    process on this machine (run-due leaves it to that process), which then dies
    without giving its lease up; the lease still has ten minutes to run. Its pid."""
    store.add("ada@example.org")
    store.add("bob@example.org")
    [step] = read_sequences(welcome)[0].steps
    campaign = version_campaign(store, StepVersion(welcome, step))
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as sender:
        set_lease(store, campaign.id, f"{socket.gethostname()}:{sender.pid}:abcd", seconds=600)
        alive = runner.invoke(cli, ["run-due"])
    # The process has exited (and been waited for); its lease row is still there.

    assert alive.exit_code == 0, alive.output
    assert (
        "welcome/01-thanks: another process is sending it "
        f"(process {sender.pid} on {socket.gethostname()}); left to it"
    ) in alive.output
    return sender.pid


def run_due(project: Path) -> subprocess.CompletedProcess[str]:
    """The next ``newsletter run-due``, as cron starts it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "run-due"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_a_step_whose_sender_died_is_sent_by_the_next_run_due(
    sender_died: int, project: Path
) -> None:
    result = run_due(project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "another process is sending it" not in result.stdout
    assert "welcome/01-thanks: campaign 1: sent 2, failed 0" in result.stdout
    assert received(project) == [
        ("ada@example.org", "Thanks for joining"),
        ("bob@example.org", "Thanks for joining"),
    ]


def test_a_step_whose_sender_died_and_fails_its_checks_is_held_not_left_to_the_dead(
    sender_died: int, project: Path
) -> None:
    # The footer loses its unsubscribe link meanwhile: the step must not go out.
    (project / "templates" / "partials").mkdir(parents=True)
    (project / "templates" / "partials" / "footer.mjml.j2").write_text(
        "<mj-section><mj-column><mj-text>Bye</mj-text></mj-column></mj-section>\n"
    )

    result = run_due(project)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"process {sender_died}" not in result.stdout
    assert "welcome/01-thanks: held: " in result.stdout
    assert "the pre-send checks found 2 error(s)" in result.stdout
    assert received(project) == []
