"""`newsletter check` catches what the editor wrote by mistake: starter text left in,
a link that did not parse, a misspelt {.button}, an alt text still to fill in."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from tests.render.test_cli_render import write_issue

OWN = "title: Garden notes\npreheader: What grew this month.\n"


def check_lines(runner: CliRunner, issue: str) -> list[str]:
    result = runner.invoke(cli, ["check", issue])
    return result.output.splitlines()


def test_a_link_that_did_not_parse_is_an_error_on_its_line(
    runner: CliRunner, project: Path
) -> None:
    issue = write_issue(
        project, OWN, "Hello.\n\nVisit [the society](https://www.nsalg .org.uk/) today.\n"
    )
    lines = check_lines(runner, issue)
    assert (
        f"{issue}:7: error: Markdown that did not become a link or image: "
        "'[the society](https://www.nsalg .org.uk/)' would be printed as is; check the "
        "brackets and that the URL has no spaces"
    ) in lines


def test_a_misspelt_class_is_an_error_with_a_suggestion(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, OWN, "Hello.\n\n[Download](https://example.org/a.pdf){.buton}\n")
    result = runner.invoke(cli, ["check", issue])
    assert result.exit_code == 1
    assert f"{issue}:7: error: unknown attribute {{.buton}}: did you mean {{.button}}?" in (
        result.output.splitlines()
    )


def test_starter_text_left_in_is_reported(runner: CliRunner, project: Path) -> None:
    starter = (Path(__file__).parents[2] / "newsletter/starter/issue.md").read_text()
    body = starter.split("---\n", 2)[2]
    issue = write_issue(
        project,
        "title: Garden notes\npreheader: One sentence that inboxes show beside the subject.\n",
        "My own first paragraph.\n\n" + body,
    )
    lines = check_lines(runner, issue)
    assert (
        f"{issue}: error: the preheader is the starter template's; write one sentence "
        "about this issue"
    ) in lines
    assert any(line.startswith(f"{issue}:8: error: starter template text left") for line in lines)


def test_an_alt_text_placeholder_must_be_filled_in(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, OWN, "Hello.\n\n![alt: describe this image](images/logo.png)\n")
    lines = check_lines(runner, issue)
    assert any(
        line.startswith(f"{issue}:7: error: image images/logo.png: fill in its alt text")
        for line in lines
    ), lines


def test_a_clean_issue_of_ones_own_passes(runner: CliRunner, project: Path) -> None:
    issue = write_issue(project, OWN, "Hello.\n\n[Download](https://example.org/a.pdf){.button}\n")
    assert check_lines(runner, issue) == [f"{issue}: ok"]
