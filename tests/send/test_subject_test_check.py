"""``newsletter check`` (and loading the config) on a subject test's settings: one line
naming the file and the key, and what to write instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import SUBJECTS, with_variants

MEASURED = {"tracking": {"clicks": True, "per_subscriber": True}}


def test_check_passes_a_subject_test_that_can_be_measured(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(**MEASURED)
    with_variants(project, "Short", "x" * 79, ab="{sample: 10%, wait: 90m, metric: clicks}")

    result = runner.invoke(cli, ["check", SEED])

    assert result.exit_code == 0, result.output
    assert (
        f"{SEED}: warning: subject_variants: B is 79 characters; inboxes cut it after about 78"
    ) in result.output


@pytest.mark.parametrize(
    ("variants", "ab", "message"),
    [
        (["Only one"], "", "subject_variants: give 2 to 4 subjects to test, not 1"),
        (["A", "B", "C", "D", "E"], "", "subject_variants: give 2 to 4 subjects to test, not 5"),
        (
            ["Same", "Same"],
            "",
            "subject_variants: two subject variants are the same; give each a different subject",
        ),
        (["One", "  "], "", "subject_variants: a subject variant is empty; write each subject out"),
        (
            ["One", "Two"],
            "{sample: 100%}",
            "ab.sample: cannot read '100%' as a sample; write a percentage of the audience "
            "above 0 and below 100, like '20%'",
        ),
        (
            ["One", "Two"],
            "{wait: 10s}",
            "ab.wait: cannot read '10s' as a wait; write a number and m, h or d, like '4h'",
        ),
        (["One", "Two"], "{metric: replies}", "ab.metric: must be one of 'clicks' or 'opens'"),
        (["One", "Two"], "{winner: A}", "ab.winner: unknown key; check its spelling"),
    ],
)
def test_check_names_the_file_and_key_of_a_bad_subject_test(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    variants: list[str],
    ab: str,
    message: str,
) -> None:
    configure(**MEASURED)
    with_variants(project, *variants, ab=ab)

    result = runner.invoke(cli, ["check", SEED])

    assert result.exit_code == 1
    assert f"{SEED}: error: front matter: {message}\n" in result.output


def test_check_says_when_nothing_would_measure_the_winner(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(tracking={"opens": True, "per_subscriber": True})  # opens, not clicks
    with_variants(project)

    result = runner.invoke(cli, ["check", SEED])

    assert result.exit_code == 1
    assert (
        f"{SEED}: error: subject_variants: a subject test by clicks needs to know which "
        "reader clicked, and nothing records it"
    ) in result.output


def test_an_issue_can_be_tested_by_opens_where_only_opens_are_measured(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(tracking={"opens": True, "per_subscriber": True})
    with_variants(project, ab="{metric: opens}")

    result = runner.invoke(cli, ["check", SEED])

    assert result.exit_code == 0, result.output


def test_subject_and_subject_variants_do_not_go_together(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(**MEASURED)
    path = with_variants(project)
    path.write_text(path.read_text().replace("---\n", "---\nsubject: Fixed\n", 1))

    result = runner.invoke(cli, ["check", SEED])

    assert result.exit_code == 1
    assert (
        f"{SEED}: error: front matter: subject_variants: give either subject or "
        "subject_variants, not both (the first variant is the subject of the preview)\n"
    ) in result.output


def test_a_bad_ab_section_in_the_config_names_the_key(
    configure: Callable[..., Config],
) -> None:
    with pytest.raises(ConfigError) as raised:
        configure(ab={"wait": "forever", "min_events": 0})

    assert str(raised.value).splitlines() == [
        "newsletter.yaml: ab.wait: cannot read 'forever' as a wait; write a number and m, h "
        "or d, like '4h'",
        "newsletter.yaml: ab.min_events: Input should be greater than or equal to 1",
    ]


def test_check_judges_the_measure_for_the_provider_given_as_send_does(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    # Only SendGrid's own events would measure it; newsletter.yaml sends through the outbox.
    configure(provider="outbox", sendgrid={"tracking": True})
    with_variants(project)

    configured = runner.invoke(cli, ["check", SEED])
    through_sendgrid = runner.invoke(cli, ["check", SEED, "--provider", "sendgrid"])
    through_smtp = runner.invoke(cli, ["check", SEED, "--provider", "smtp"])

    assert configured.exit_code == 1
    assert (
        f"{SEED}: error: subject_variants: a subject test by clicks needs to know which "
        "reader clicked, and nothing records it: turn on first-party tracking "
        "(tracking.clicks: true and tracking.per_subscriber: true in newsletter.yaml), or "
        "send through a provider that tracks"
    ) in configured.output
    assert through_sendgrid.exit_code == 0, through_sendgrid.output
    assert f"{SEED}: ok\n" in through_sendgrid.output
    assert through_smtp.exit_code == 1
    assert "error: subject_variants: a subject test by clicks" in through_smtp.output


def test_check_with_an_unknown_provider_is_a_usage_error(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(**MEASURED)
    with_variants(project)

    result = runner.invoke(cli, ["check", SEED, "--provider", "carrier-pigeon"])

    assert result.exit_code == 2
    assert "Invalid value for '--provider': 'carrier-pigeon' is not one of" in result.output


@pytest.mark.usefixtures("secret")
def test_send_through_a_tracking_provider_other_than_the_configured_one_sends_the_sample(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    runner: CliRunner,
    project: Path,
) -> None:
    configure(provider="outbox", sendgrid={"api_host": sendgrid.url, "tracking": True})
    with_variants(project)
    subscribers(10)

    result = runner.invoke(cli, ["send", SEED, "--provider", "sendgrid", "--yes"])

    assert result.exit_code == 0, result.output
    assert sorted(message.subject for message in sendgrid.messages()) == sorted(SUBJECTS)
