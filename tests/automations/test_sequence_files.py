"""Sequences as files: ``new --automation``, ``check``/``build`` on steps, config errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.store import Store


def test_new_automation_starts_a_step_that_checks_once_written(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(automations={"welcome": {"path": "automations/welcome"}})

    first = runner.invoke(cli, ["new", "--automation", "welcome", "Thanks for joining"])
    second = runner.invoke(cli, ["new", "--automation", "welcome", "Our best stories"])

    assert first.exit_code == 0, first.output
    step = project / "automations/welcome/01-thanks-for-joining.md"
    assert first.output.splitlines()[0] == f"created {step}"
    assert "after: 0 days" in step.read_text(encoding="utf-8")
    later = project / "automations/welcome/02-our-best-stories.md"
    assert second.exit_code == 0, second.output
    assert "after: 3 days" in later.read_text(encoding="utf-8")
    # The starter text is flagged like an issue's, so nobody mails it by mistake.
    checked = runner.invoke(cli, ["check", str(step)])
    assert checked.exit_code == 1
    assert "starter" in checked.output


def test_new_automation_names_the_missing_sequence(
    configure: Callable[..., Config], runner: CliRunner
) -> None:
    configure()

    result = runner.invoke(cli, ["new", "--automation", "welcome", "Thanks"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: newsletter.yaml: automations: no sequence named 'welcome' (configured: none "
        "yet); add 'automations: {welcome: {path: automations/welcome}}'\n"
    )


def test_check_and_build_take_a_step_and_check_says_when_after_is_missing(
    welcome: Config, runner: CliRunner, project: Path, write_step: Callable[..., Path]
) -> None:
    good = write_step("01-thanks", "0 days", title="Thanks for joining").relative_to(project)
    untimed = write_step("02-untimed", None, title="Untimed").relative_to(project)

    ok = runner.invoke(cli, ["check", str(good)])
    built = runner.invoke(cli, ["build", str(good)])
    missing = runner.invoke(cli, ["check", str(untimed)])

    assert ok.exit_code == 0, ok.output
    assert ok.output.splitlines()[-1] == f"{good}: ok"
    assert built.exit_code == 0, built.output
    assert (project / "build/01-thanks/email.html").exists()
    assert missing.exit_code == 1
    assert missing.output.splitlines()[-1] == (
        f"{untimed}: error: front matter: after: required in a sequence's step; write e.g. "
        "'after: 0 days' (right away) or 'after: 3 days'"
    )


def test_an_unreadable_after_and_an_unknown_topic_are_named(
    welcome: Config,
    configure: Callable[..., Config],
    runner: CliRunner,
    write_step: Callable[..., Path],
) -> None:
    odd = write_step("02-odd", "soon")

    result = runner.invoke(cli, ["run-due"])

    assert result.exit_code == 1
    assert result.output == (
        f"Error: {odd}: front matter: after: cannot read 'soon'; write e.g. 'after: 0 days' "
        "(right away) or 'after: 3 days'\n"
    )
    odd.unlink()
    with pytest.raises(ConfigError) as raised:
        configure(automations={"welcome": {"path": "automations/welcome", "topics": ["x"]}})
    assert str(raised.value) == (
        "newsletter.yaml: automations.welcome.topics: unknown topic 'x'; use one of the ids "
        "under topics:"
    )


def test_a_step_is_not_sent_to_the_whole_list_but_can_be_proofed(
    welcome: Config, runner: CliRunner, project: Path, write_step: Callable[..., Path]
) -> None:
    step = write_step("01-thanks", "0 days", title="Thanks for joining").relative_to(project)

    refused = runner.invoke(cli, ["send", str(step), "--yes"])
    proof = runner.invoke(cli, ["send", str(step), "--test", "me@example.org"])

    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: {step}: a step of the sequence 'welcome': 'newsletter run-due' sends it to "
        "each reader when it is due; --test sends a proof, --retry-unknown sends it again to "
        "the readers whose copy is unknown, --retry-failed to those whose copy failed\n"
    )
    assert proof.exit_code == 0, proof.output


def test_a_step_with_a_segment_is_refused_rather_than_sent_to_everyone_due(
    welcome: Config,
    runner: CliRunner,
    project: Path,
    store: Store,
    write_step: Callable[..., Path],
) -> None:
    # A step goes to every reader of its sequence who is due; a segment: there would
    # be ignored, so it is an error, named by check and by run-due before anything goes.
    segmented = write_step(
        "02-uk-only", "0 days", extra="segment: 'attributes.country == \"GB\"'\n"
    ).relative_to(project)
    store.add("ada@example.org", attributes={"country": "FR"})
    message = (
        "front matter: segment: a sequence's step goes to every reader of the sequence who "
        "is due (narrow it with topics:); segments do not apply to steps: remove it"
    )

    checked = runner.invoke(cli, ["check", str(segmented)])
    ran = runner.invoke(cli, ["run-due"])

    assert checked.exit_code == 1
    assert checked.output.splitlines()[-1] == f"{segmented}: error: {message}"
    assert (ran.exit_code, ran.output) == (1, f"Error: {project / segmented}: {message}\n")
    assert not (project / "outbox").exists()
