"""What a campaign sent is kept when it starts, and ``send`` says when the file no longer
matches it (changed after the start, or the same issue under another name)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.snapshots import find_snapshot, source_hash
from tests.send.conftest import SEED
from tests.send.test_send_cli import outbox_messages
from tests.site.publishing import publish


def test_sending_keeps_what_was_sent(
    runner: CliRunner, project: Path, store: Store, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(2)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    campaign = campaign_rows.find_campaign(store, "stem-cells-in-breast-milk")
    assert campaign is not None
    snapshot = find_snapshot(store, campaign.id)
    assert snapshot is not None
    source = (project / SEED).read_text(encoding="utf-8")
    assert snapshot.source == source and snapshot.source_hash == source_hash(source)
    assert snapshot.subject == "Stem Cells: The Medicine in Breast Milk?"
    assert "[[html:unsubscribe_url]]" in snapshot.html  # before personalisation
    assert "[[text:unsubscribe_url]]" in snapshot.text
    # The images as mailed: the pipeline's resized copies, with their hashes.
    names = {asset.path.rsplit("/", 1)[-1].rsplit("-", 1)[0] for asset in snapshot.assets}
    assert names >= {"stem-cells-hero", "author-hazem-barmada"}
    for asset in snapshot.assets:
        assert hashlib.sha256((project / asset.path).read_bytes()).hexdigest() == asset.sha256


def test_a_file_changed_after_the_start_is_flagged_and_the_rest_get_what_was_sent(
    runner: CliRunner,
    project: Path,
    config: Config,
    store: Store,
    subscribers: Callable[..., list[int]],
) -> None:
    subscribers(2)
    publish(config, store, project / SEED)  # started; nobody mailed yet
    path = project / SEED
    path.write_text(path.read_text().replace("remarkable cells", "CORRECTED cells"))

    asked = runner.invoke(cli, ["send", SEED], input="n\n")
    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert asked.exit_code == 1
    assert "Warning:    issues/2026-11-26-stem-cells-in-breast-milk.md changed after its " in (
        asked.output
    )
    assert "1 warning(s) above. Send to 2 anyway? [y/N]: n" in asked.output
    assert result.exit_code == 0, result.output
    bodies = [message.get_body(("plain",)).get_content() for message in outbox_messages(project)]
    assert len(bodies) == 2
    assert all("remarkable cells" in body and "CORRECTED" not in body for body in bodies)


def test_the_same_issue_under_another_name_is_flagged_before_mailing_everyone_again(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(2)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    renamed = "issues/2026-11-27-stem-cells.md"
    shutil.copy(project / SEED, project / renamed)

    result = runner.invoke(cli, ["send", renamed], input="n\n")

    assert result.exit_code == 1
    assert (
        f"Warning:    {renamed} has the same title and text as 'stem-cells-in-breast-milk', "
        "already sent (campaign 1): if the file was renamed, sending it mails everyone again"
    ) in result.output
    assert "Send to 2 anyway? [y/N]: n" in result.output
    assert len(outbox_messages(project)) == 2  # only the first campaign's


def test_an_unchanged_resume_and_a_new_issue_have_no_warning(
    runner: CliRunner,
    project: Path,
    config: Config,
    store: Store,
    subscribers: Callable[..., list[int]],
) -> None:
    subscribers(1)
    publish(config, store, project / SEED)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Warning:" not in result.output
