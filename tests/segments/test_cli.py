"""``--segment`` on ``subscribers list`` and ``subscribers count``, and ``segments:`` in
newsletter.yaml: exact output, exact errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.store import Store

pytestmark = pytest.mark.usefixtures("project_store")


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def readers(project: Path, project_store: Store) -> None:
    with (project / "newsletter.yaml").open("a", encoding="utf-8") as config:
        config.write(
            'segments:\n  uk: \'attributes.country == "GB" and topics contains "research"\'\n'
        )
    project_store.add("ann@example.org", topics=["research"], attributes={"country": "GB"})
    project_store.add("bob@example.org", topics=["research"], attributes={"country": "FR"})
    project_store.add("cat@example.org", topics=["stories"], attributes={"country": "GB"})
    project_store.add(
        "dan@example.org", topics=["research"], attributes={"country": "GB"}, status="pending"
    )


@pytest.mark.usefixtures("readers")
def test_list_a_saved_segment_and_an_expression(runner: CliRunner) -> None:
    code, output = run(runner, "subscribers", "list", "--segment", "uk", "--format", "csv")
    assert code == 0
    assert [line.split(",")[0] for line in output.splitlines()[1:]] == [
        "ann@example.org",
        "dan@example.org",
    ]
    code, output = run(
        runner,
        "subscribers",
        "list",
        "--status",
        "active",
        "--segment",
        'attributes.country == "GB"',
    )
    assert code == 0
    assert [line.split()[0] for line in output.splitlines()[1:]] == [
        "ann@example.org",
        "cat@example.org",
    ]


@pytest.mark.usefixtures("readers")
def test_count_a_segment_by_status(runner: CliRunner) -> None:
    code, output = run(runner, "subscribers", "count", "--segment", "uk")
    assert code == 0
    assert output.startswith(
        'segment: uk (attributes.country == "GB" and topics contains "research")\n\n'
        "status        subscribers\n"
        "pending                 1\n"
        "active                  1\n"
        "unsubscribed            0\n"
        "bounced                 0\n"
        "complained              0\n"
        "total                   2\n"
    )


@pytest.mark.usefixtures("readers")
def test_a_bad_segment_is_one_line_and_exit_1(runner: CliRunner) -> None:
    assert run(runner, "subscribers", "count", "--segment", "received >=") == (
        1,
        "Error: segment 'received >=': position 12: expected a whole number, found end of input\n",
    )
    assert run(runner, "subscribers", "list", "--segment", "fr") == (
        1,
        "Error: unknown segment 'fr'; newsletter.yaml defines: uk; or give an expression such "
        "as 'attributes.country == \"GB\"'\n",
    )
    assert run(runner, "subscribers", "list", "--segment", 'topics contains "recipes"') == (
        1,
        "Error: segment 'topics contains \"recipes\"': position 17: unknown topic 'recipes'; "
        "known topics: research, stories, events\n",
    )


@pytest.mark.parametrize(
    ("segment", "message"),
    [
        (
            "'attributes.country = \"GB\"'",
            "segments.uk: position 20: unexpected '='; expected a field, a \"quoted value\", "
            "a number, an operator or a parenthesis; see docs/segments.md",
        ),
        (
            "'topics contains \"recipes\"'",
            "segments.uk: position 17: unknown topic 'recipes'; use one of the ids under topics:",
        ),
    ],
)
def test_a_bad_saved_segment_is_refused_when_the_config_loads(
    runner: CliRunner, project: Path, segment: str, message: str
) -> None:
    with (project / "newsletter.yaml").open("a", encoding="utf-8") as config:
        config.write(f"segments:\n  uk: {segment}\n")
    code, output = run(runner, "subscribers", "count")
    assert code == 1
    assert output == f"Error: newsletter.yaml: {message}\n"


def test_a_segment_over_an_imported_services_custom_fields(runner: CliRunner) -> None:
    # Mailchimp's audience export: its CC column becomes attributes.country, a merge
    # field of its own ("Phone Number") an attribute of that name.
    export = Path(__file__).parent.parent / "store/exports/subscribed_members_export_5f2a.csv"
    assert run(runner, "subscribers", "import", str(export))[0] == 0

    def listed(segment: str) -> list[str]:
        code, output = run(runner, "subscribers", "list", "--segment", segment, "--format", "csv")
        assert code == 0, output
        return [line.split(",")[0] for line in output.splitlines()[1:]]

    assert listed('attributes.country == "PL"') == ["zoe@example.org"]
    assert listed('attributes["Phone Number"] contains "+48"') == ["zoe@example.org"]
    assert listed(
        'source == "import:subscribed_members_export_5f2a.csv" and not attributes.country in ["PL"]'
    ) == ["amir@example.org", "mei@example.org"]


def test_a_segment_over_a_plain_csvs_own_columns(runner: CliRunner, project: Path) -> None:
    # A spreadsheet's columns the import does not read (Country, Plan) are kept as
    # attributes, as other services' custom fields are, so a segment can use them.
    sheet = project / "sheet.csv"
    sheet.write_text(
        "email,name,Country,Plan\n"
        "ann@example.org,Ann,GB,pro\n"
        "bob@example.org,Bob,FR,pro\n"
        "cat@example.org,Cat,GB,\n",
        encoding="utf-8",
    )
    code, output = run(runner, "subscribers", "import", str(sheet))
    assert code == 0, output
    assert "Kept as attributes: 'Country', 'Plan' (--ignore-other-columns" in output
    assert "Ignored columns" not in output

    def listed(segment: str) -> list[str]:
        code, output = run(runner, "subscribers", "list", "--segment", segment, "--format", "csv")
        assert code == 0, output
        return [line.split(",")[0] for line in output.splitlines()[1:]]

    assert listed('attributes.Country == "GB"') == ["ann@example.org", "cat@example.org"]
    assert listed('attributes.Country == "GB" and attributes.Plan == "pro"') == ["ann@example.org"]
