"""``newsletter subscribers ...`` and ``newsletter db ...``: exact output, exact errors."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.send.campaign_rows import start_campaign
from newsletter.store import Store, open_store_url
from newsletter.store.migrations import MIGRATIONS

pytestmark = pytest.mark.usefixtures("project_store")


def run(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), input=input)
    return result.exit_code, result.output


def test_import_the_example_list(runner: CliRunner) -> None:
    code, output = run(runner, "subscribers", "import", "subscribers.example.csv")

    assert code == 0
    assert output == (
        "Read subscribers.example.csv (comma-delimited): email from 'email', name from 'name', "
        "topics from 'topics', status from 'status', subscribed at from 'subscribed_at', "
        "source from 'source'\n"
        "added 35, updated 0, unchanged 0, suppressed 0 (left alone), invalid 0\n"
    )
    assert run(runner, "subscribers", "import", "subscribers.example.csv")[1].endswith(
        "added 0, updated 0, unchanged 31, suppressed 4 (left alone), invalid 0\n"
    )


def test_import_reports_every_bad_row(runner: CliRunner, project: Path) -> None:
    (project / "signups.csv").write_text(
        "email,name,topics\n"
        "ann@example.org,Ann,research\n"
        "ann@example,Typo,\n"
        "bob@example.org,Bob,recipes\n"
        "Ann@Example.org,Ann twice,\n"
        'cat@example.org,"Cat,\n'
        "dan@example.org;Dan;events\n",
        encoding="utf-8",
    )

    code, output = run(runner, "subscribers", "import", "signups.csv", "--topic", "events")

    assert code == 0
    assert output == (
        "Read signups.csv (comma-delimited): email from 'email', name from 'name', "
        "topics from 'topics'\n"
        "line 3: 'ann@example' is not a valid email address: The part after the @-sign is "
        "not valid. It should have a period.\n"
        "line 4: unknown topic 'recipes'; known topics: research, stories, events "
        "(add new topics under 'topics:' in newsletter.yaml)\n"
        "line 5: duplicate of line 2 (Ann@example.org); only the first is imported\n"
        "line 6: the row cannot be read as CSV (unexpected end of data); check it for an "
        'unbalanced " or a stray quote inside a value\n'
        "line 7: 'dan@example.org;Dan;events' holds several values separated by semicolon, "
        "but the header uses another delimiter; use one delimiter throughout the file\n"
        "Topics newsletter.yaml does not define: recipes (1).\n"
        "To create one, add it under 'topics:' in newsletter.yaml and import again:\n"
        "  - id: recipes\n"
        "    name: Recipes\n"
        "added 1, updated 0, unchanged 0, suppressed 0 (left alone), invalid 5\n"
        "Rejected rows written to signups.rejects.csv; fix them and import it.\n"
    )


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (
            b"",
            "Error: list.csv is empty; a subscribers CSV starts with a header line such as: "
            "email,name,topics\n",
        ),
        (
            b"name;topics\nAnn;research\n",
            "Error: list.csv:1: no email column in the header (found 'name', 'topics'); name the "
            "column with the addresses 'email' (E-mail and Email Address work too)\n",
        ),
        (
            b"email:name\nann@example.org:Ann\n",
            "Error: list.csv:1: no email column in the header (found 'email:name'); name the "
            "column with the addresses 'email' (E-mail and Email Address work too); the header "
            "is a single column: if the file is delimited by ':', pass --delimiter (comma, "
            "semicolon and tab are recognised on their own)\n",
        ),
        (
            "email,name\nrenée@example.org,Renée\n".encode("cp1252"),
            "Error: list.csv:2: not utf-8 text (byte 0xe9); save the file as UTF-8, or pass "
            "--encoding with its encoding (for Excel on Windows: --encoding cp1252)\n",
        ),
    ],
    ids=["empty", "no-email-column", "wrong-delimiter", "not-utf-8"],
)
def test_import_refuses_unreadable_files(
    runner: CliRunner, project: Path, content: bytes, error: str
) -> None:
    (project / "list.csv").write_bytes(content)

    assert run(runner, "subscribers", "import", "list.csv") == (1, error)


def test_import_with_another_delimiter_and_encoding(runner: CliRunner, project: Path) -> None:
    (project / "list.csv").write_bytes("email:name\nrenee@example.org:Renée\n".encode("cp1252"))

    code, output = run(
        runner, "subscribers", "import", "list.csv", "--delimiter", ":", "--encoding", "cp1252"
    )

    assert (code, output.splitlines()[-1]) == (
        0,
        "added 1, updated 0, unchanged 0, suppressed 0 (left alone), invalid 0",
    )


def test_import_dry_run(runner: CliRunner) -> None:
    code, output = run(runner, "subscribers", "import", "subscribers.example.csv", "--dry-run")

    assert code == 0
    assert output.splitlines()[-1] == (
        "Dry run, nothing saved: would have added 35, updated 0, unchanged 0, "
        "suppressed 0 (left alone), invalid 0"
    )
    assert run(runner, "subscribers", "count")[1].splitlines()[6] == "total                   0"


def test_import_usage_errors(runner: CliRunner) -> None:
    code, output = run(runner, "subscribers", "import", "nowhere.csv")
    assert code == 2
    assert "Error: Invalid value for 'FILE': File 'nowhere.csv' does not exist." in output

    code, output = run(
        runner, "subscribers", "import", "subscribers.example.csv", "--topic", "recipes"
    )
    assert (code, output) == (
        1,
        "Error: unknown topic 'recipes'; known topics: research, stories, events "
        "(add new topics under 'topics:' in newsletter.yaml)\n",
    )

    code, output = run(
        runner, "subscribers", "import", "subscribers.example.csv", "--delimiter", "||"
    )
    assert code == 2
    assert "Error: Invalid value for --delimiter: must be one character, or 'tab'" in output


def test_add_then_add_again(runner: CliRunner) -> None:
    assert run(
        runner, "subscribers", "add", "Ann@Example.org", "--name", "Ann", "--topic", "research"
    ) == (0, "Added Ann@example.org (active; topics: research)\n")
    assert run(runner, "subscribers", "add", "ann@example.org", "--topic", "events") == (
        0,
        "Updated Ann@example.org (active; topics: research, events)\n",
    )
    assert run(runner, "subscribers", "add", "ann@example.org") == (
        0,
        "Ann@example.org is already active; nothing to change\n",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["not-an-address"],
            "Error: 'not-an-address' is not a valid email address: "
            "An email address must have an @-sign.\n",
        ),
        (
            ["ann@example.org", "--topic", "recipes"],
            "Error: unknown topic 'recipes'; known topics: research, stories, events "
            "(add new topics under 'topics:' in newsletter.yaml)\n",
        ),
    ],
)
def test_add_refuses_bad_input(runner: CliRunner, args: list[str], error: str) -> None:
    assert run(runner, "subscribers", "add", *args) == (1, error)


def test_remove_keeps_the_address_suppressed(runner: CliRunner, project_store: Store) -> None:
    project_store.add("ann@example.org")

    assert run(runner, "subscribers", "remove", "ANN@example.org", "--reason", "by phone") == (
        0,
        "Unsubscribed ann@example.org\n",
    )
    assert run(runner, "subscribers", "remove", "ann@example.org") == (
        0,
        "ann@example.org is already unsubscribed; nothing to change\n",
    )
    assert run(runner, "subscribers", "add", "ann@example.org") == (
        1,
        "Error: ann@example.org is unsubscribed; a suppressed address is never reactivated by "
        "an add or import (the person can resubscribe from a link in any issue)\n",
    )
    assert run(runner, "subscribers", "remove", "bob@example.org") == (
        1,
        "Error: no subscriber with address bob@example.org\n",
    )


def test_forget_asks_first_then_erases(runner: CliRunner, project_store: Store) -> None:
    project_store.add("ann@example.org", name="Ann")

    code, output = run(runner, "subscribers", "forget", "ann@example.org", input="n\n")
    assert code == 1
    assert output == (
        "Erase everything stored about ann@example.org? This cannot be undone [y/N]: n\nAborted!\n"
    )
    assert project_store.find("ann@example.org") is not None

    assert run(runner, "subscribers", "forget", "ann@example.org", "--yes") == (
        0,
        "Erased ann@example.org; only a hash of the address is kept, so it is never mailed\n",
    )
    assert project_store.find("ann@example.org") is None
    assert run(runner, "subscribers", "add", "ann@example.org") == (
        1,
        "Error: ann@example.org was erased at the person's request and stays suppressed; "
        "it cannot be added again\n",
    )
    assert run(runner, "subscribers", "forget", "bob@example.org", "--yes") == (
        0,
        "No subscriber bob@example.org; its hash is now on the suppression list all the same\n",
    )


def test_show_is_everything_stored_as_json(runner: CliRunner, project_store: Store) -> None:
    ann = project_store.add(
        "ann@example.org",
        name="Ann",
        topics=["stories"],
        ip="192.0.2.4",
        source="web",
        status="pending",
    )
    project_store.confirm(ann.id, ip="192.0.2.5")

    code, output = run(runner, "subscribers", "show", "ann@example.org")

    assert code == 0
    shown = json.loads(output)
    assert shown["email"] == "ann@example.org"
    assert shown["topics"] == ["stories"]
    assert (shown["source"], shown["subscribed_ip"], shown["confirmed_ip"]) == (
        "web",
        "192.0.2.4",
        "192.0.2.5",
    )
    assert [event["event"] for event in shown["events"]] == ["confirmed"]
    assert shown["mailings"] == []
    assert run(runner, "subscribers", "show", "bob@example.org") == (
        1,
        "Error: no subscriber with address bob@example.org\n",
    )


def test_show_lists_the_issues_mailed_to_the_person(
    runner: CliRunner, project_store: Store
) -> None:
    ann = project_store.add("ann@example.org", topics=["research"])
    campaign = start_campaign(
        project_store,
        slug="stem-cells",
        issue_path="issues/x.md",
        subject="Stem cells",
        topics=["research"],
        provider="outbox",
    )
    assert campaign.recipients == 1

    shown = json.loads(run(runner, "subscribers", "show", "ann@example.org")[1])

    assert shown["id"] == ann.id
    assert shown["mailings"] == [
        {"issue": "stem-cells", "subject": "Stem cells", "state": "pending", "sent_at": None}
    ]


def test_list_in_three_formats(runner: CliRunner, project_store: Store) -> None:
    project_store.add("ann@example.org", name="Ann Lee", topics=["research", "events"])
    project_store.add("bob@example.org", name="=1+1", topics=["stories"], status="pending")

    code, output = run(runner, "subscribers", "list")
    assert code == 0
    assert output.splitlines() == [
        "EMAIL                                    STATUS       TOPICS                     NAME",
        "ann@example.org                          active       research,events            Ann Lee",
        "bob@example.org                          pending      stories                    =1+1",
    ]
    code, output = run(runner, "subscribers", "list", "--format", "csv", "--status", "pending")
    assert code == 0
    assert list(csv.reader(io.StringIO(output)))[1][:4] == [
        "bob@example.org",
        "'=1+1",
        "stories",
        "pending",
    ]
    code, output = run(runner, "subscribers", "list", "--format", "json", "--topic", "events")
    assert [item["email"] for item in json.loads(output)] == ["ann@example.org"]
    assert run(runner, "subscribers", "list", "--format", "json", "--status", "bounced") == (
        0,
        "[]\n",
    )


def test_export_round_trips_through_import(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    run(runner, "subscribers", "import", "subscribers.example.csv")

    assert run(runner, "subscribers", "export", "backup.csv") == (
        0,
        "Exported 35 subscribers to backup.csv\n",
    )
    code, output = run(runner, "subscribers", "import", "backup.csv")
    assert code == 0
    assert output.splitlines()[-1] == (
        "added 0, updated 0, unchanged 31, suppressed 4 (left alone), invalid 0"
    )
    with (project / "backup.csv").open(encoding="utf-8") as file:
        first = next(csv.DictReader(file))
    assert first["email"] == "alexia.garcia@example.org"
    assert first["topics"] == "research stories events"
    assert first["subscribed_at"] == "2024-11-03T09:12:00Z"


def test_export_to_standard_output_neutralises_formulas(
    runner: CliRunner, project_store: Store
) -> None:
    for number, name in enumerate(["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "Plain"]):
        project_store.add(f"reader{number}@example.org", name=name)

    code, output = run(runner, "subscribers", "export")

    names = [row["name"] for row in csv.DictReader(io.StringIO(output))]
    assert code == 0
    assert names == ["'=cmd|' /C calc'!A0", "'+1", "'-1", "'@SUM(A1)", "Plain"]


def test_count_by_status_and_topic(runner: CliRunner) -> None:
    run(runner, "subscribers", "import", "subscribers.example.csv")

    assert run(runner, "subscribers", "count") == (
        0,
        (
            "status        subscribers\n"
            "pending                 3\n"
            "active                 28\n"
            "unsubscribed            2\n"
            "bounced                 1\n"
            "complained              1\n"
            "total                  35\n"
            "\n"
            "topic         active\n"
            "research          14\n"
            "stories           18\n"
            "events            12\n"
        ),
    )


def test_db_upgrade(runner: CliRunner, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_DATABASE_URL")

    code, output = run(runner, "db", "upgrade")

    assert code == 0
    assert output.startswith("Applied 1: subscribers, topics, consent events and suppressions\n")
    assert output.splitlines() == [f"Applied {m.version}: {m.description}" for m in MIGRATIONS]
    assert (project / "newsletter.db").is_file()
    assert run(runner, "db", "upgrade") == (
        0,
        f"The database is up to date (schema version {len(MIGRATIONS)})\n",
    )


def test_a_bad_database_url(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "mysql://localhost/news")

    assert run(runner, "subscribers", "count") == (
        1,
        "Error: database URL 'mysql://localhost/news': only SQLite and PostgreSQL are supported\n",
    )


def test_every_command_has_help(runner: CliRunner) -> None:
    for group, commands in (
        ("subscribers", ["import", "add", "remove", "forget", "show", "list", "export", "count"]),
        ("db", ["upgrade"]),
    ):
        for command in commands:
            code, output = run(runner, group, command, "--help")
            assert code == 0
            assert output.split("\n\n")[1].strip(), f"{group} {command} has no help text"


def test_a_database_that_cannot_be_opened(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'news.db'}"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)

    assert run(runner, "subscribers", "count") == (
        1,
        f"Error: cannot open the database {url}: unable to open database file; check "
        "database_url in newsletter.yaml or NEWSLETTER_DATABASE_URL\n",
    )


EXPORTS = Path(__file__).parent / "exports"


def test_import_recognises_an_export_and_dry_runs_it_by_status(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    (project / "unsubscribed.csv").write_bytes(
        (EXPORTS / "unsubscribed_members_export_5f2a.csv").read_bytes()
    )

    code, output = run(runner, "subscribers", "import", "unsubscribed.csv", "--dry-run")

    assert code == 0
    assert output.splitlines()[0] == (
        "Read a Mailchimp export (unsubscribed members): unsubscribed.csv (comma-delimited)"
    )
    assert output.splitlines()[1].startswith(
        "Columns: email from 'Email Address', first name from 'First Name', "
        "last name from 'Last Name', groups from 'Interests', "
    )
    assert output.splitlines()[-4:] == [
        "By status in the file:",
        "  status             added    updated  unchanged suppressed   rejected",
        "  unsubscribed           2          0          0          0          0",
        "Dry run, nothing saved: would have added 2, updated 0, unchanged 0, "
        "suppressed 0 (left alone), invalid 0",
    ]
    assert project_store.counts()["status"]["unsubscribed"] == 0


def test_import_maps_groups_to_topics_and_suggests_the_others_as_yaml(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    (project / "members.csv").write_bytes((EXPORTS / "members.2026-11-29.csv").read_bytes())

    code, output = run(runner, "subscribers", "import", "members.csv")

    assert code == 0
    assert (
        output.splitlines()[0]
        == "Read a Ghost members export (members): members.csv (comma-delimited)"
    )
    assert (
        "Topics newsletter.yaml does not define: Food & Drink (1).\n"
        "Those rows were imported without them. To keep them as topics, add them under "
        "'topics:' in newsletter.yaml, or map them to a topic with --map-topic "
        '"VALUE=topic" (or imports.topic_map), and import again:\n'
        "  - id: food-drink\n"
        "    name: Food & Drink\n"
    ) in output

    code, output = run(
        runner, "subscribers", "import", "members.csv", "--map-topic", "Food & Drink=stories"
    )

    assert output.splitlines()[-1] == (
        "added 0, updated 1, unchanged 0, suppressed 2 (left alone), invalid 0"
    )
    assert project_store.find("anna@example.org").topics == ("research", "stories")  # type: ignore[union-attr]


def test_import_a_list_of_opt_outs_with_status(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    (project / "bounces.csv").write_text("email\nann@example.org\n", encoding="utf-8")

    code, output = run(runner, "subscribers", "import", "bounces.csv", "--status", "bounced")

    assert (code, output.splitlines()[-1]) == (
        0,
        "added 1, updated 0, unchanged 0, suppressed 0 (left alone), invalid 0",
    )
    assert project_store.find("ann@example.org").status == "bounced"  # type: ignore[union-attr]


def test_an_exported_unsubscribe_with_a_formula_guard_imports_back_suppressed(
    runner: CliRunner,
    project: Path,
    project_store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    joe = project_store.add("-joe@example.org", name="@joe")
    project_store.unsubscribe(joe.id, source="web")
    run(runner, "subscribers", "export", "backup.csv")
    assert "'-joe@example.org" in (project / "backup.csv").read_text(encoding="utf-8")
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", fresh)

    code, output = run(runner, "subscribers", "import", "backup.csv")

    assert (code, output.splitlines()[-1]) == (
        0,
        "added 1, updated 0, unchanged 0, suppressed 0 (left alone), invalid 0",
    )
    store = open_store_url(fresh, project_store.topics)
    back = store.describe("-joe@example.org")
    assert (back["email"], back["name"], back["status"]) == (
        "-joe@example.org",
        "@joe",
        "unsubscribed",
    )
    assert back["unsubscribe_source"] == "web"
    assert store.find("'-joe@example.org") is None
    store.close()


def test_a_group_column_with_ampersands_suggests_valid_yaml(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    (project / "crm.csv").write_text(
        'email,Interests\nann@example.org,"Food & Drink, Research"\nbob@example.org,Research\n',
        encoding="utf-8",
    )

    code, output = run(runner, "subscribers", "import", "crm.csv")

    assert code == 0
    assert "line 2: unknown topic 'Food & Drink'" in output
    suggestion = output.split("and import again:\n")[1].split("added ")[0]
    assert yaml.safe_load(textwrap.dedent(suggestion)) == [
        {"id": "food-drink", "name": "Food & Drink"}
    ]
    code, output = run(
        runner, "subscribers", "import", "crm.csv", "--map-topic", "food & drink=stories"
    )
    assert code == 0
    assert output.splitlines()[-1] == (
        "added 1, updated 0, unchanged 1, suppressed 0 (left alone), invalid 0"
    )
    assert project_store.find("ann@example.org").topics == ("research", "stories")  # type: ignore[union-attr]


def test_names_never_reach_the_terminal_with_control_characters(
    runner: CliRunner, project_store: Store
) -> None:
    added = project_store.add("eve@example.org", name="Eve\x1b]0;pwned\x07 \x1b[2JSmith")
    # A name stored before names were cleaned: printed, never obeyed.
    with project_store.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE subscribers SET name = ? WHERE id = ?"
            if connection.dialect.name == "sqlite"
            else "UPDATE subscribers SET name = %s WHERE id = %s",
            ("Old\x1b[31mName\x9b", added.id),
        )
    project_store.add("ann@example.org", name="Ann\x00 \x9bLee")

    code, output = run(runner, "subscribers", "list")
    for json_output in (
        run(runner, "subscribers", "list", "--format", "json")[1],
        run(runner, "subscribers", "show", "eve@example.org")[1],
    ):
        assert "\x1b" not in json_output and "\x9b" not in json_output
        json.loads(json_output)

    assert code == 0
    assert "\x1b" not in output and "\x00" not in output and "\x9b" not in output
    assert "Old\\x1b[31mName" in output
    assert "Ann Lee" in output
    assert added.name == "Eve ]0;pwned [2JSmith"


def test_a_name_cannot_hide_a_bidirectional_override(project_store: Store) -> None:
    # U+202E turns "Eve\u202egnp.exe" into "Eveexe.png" on screen: the same cleaning as
    # an import's, whether the name comes from the CLI, a form or a file.
    added = project_store.add("eve@example.org", name="Eve\u202e Smith\u200b")

    assert added.name == "Eve Smith"


def test_a_dry_run_of_a_mailchimp_zip_reports_what_the_run_will_do(
    runner: CliRunner, project: Path
) -> None:
    import zipfile

    with zipfile.ZipFile(project / "audience_export_5f2a.zip", "w") as archive:
        for name in (
            "subscribed_members_export_5f2a.csv",
            "unsubscribed_members_export_5f2a.csv",
            "cleaned_members_export_5f2a.csv",
        ):
            archive.write(EXPORTS / name, f"audience_export_5f2a/{name}")
        # Two people who unsubscribed (or bounced) are still in the subscribed file.
        archive.writestr(
            "audience_export_5f2a/subscribed_members_export_more.csv",
            "Email Address,First Name,MEMBER_RATING,OPTIN_TIME\n"
            "ines@example.org,Inês,2,\ngone@example.org,,1,\nnew@example.org,New,1,\n",
        )

    code, dry = run(runner, "subscribers", "import", "audience_export_5f2a.zip", "--dry-run")
    assert code == 0, dry
    code, real = run(runner, "subscribers", "import", "audience_export_5f2a.zip")
    assert code == 0, real

    def outcomes(output: str) -> list[str]:
        prefix = "Dry run, nothing saved: would have "
        return [
            line.removeprefix(prefix)
            for line in output.splitlines()
            if line.startswith(("added ", prefix, "All "))
        ]

    assert outcomes(real)[-2:] == [
        "added 1, updated 0, unchanged 0, suppressed 2 (left alone), invalid 0",
        "All 4 files: added 7, updated 0, unchanged 0, suppressed 2 (left alone), invalid 0",
    ]
    assert outcomes(dry) == outcomes(real)


def test_an_unrecognised_interest_group_column_says_how_to_make_it_topics(
    runner: CliRunner, project: Path
) -> None:
    (project / "subscribed_members_export_5f2a.csv").write_text(
        "Email Address,First Name,Phone Number,Newsletter Interests,MEMBER_RATING,OPTIN_TIME\n"
        'ann@example.org,Ann,+1 555 0100,"Research, Events",3,2024-01-01 10:00:00\n',
        encoding="utf-8",
    )

    code, output = run(runner, "subscribers", "import", "subscribed_members_export_5f2a.csv")

    assert code == 0, output
    assert (
        "Kept as attributes: 'Phone Number', 'Newsletter Interests' "
        "(--ignore-other-columns leaves them out)\n"
        "'Newsletter Interests' looks like an interest-group column: to make its groups "
        "topics, add it to newsletter.yaml and import again:\n"
        "  imports:\n"
        "    group_columns:\n"
        "    - Newsletter Interests\n"
    ) in output


def test_a_group_column_with_any_title_is_named_when_its_values_are_topics(
    runner: CliRunner, project: Path
) -> None:
    (project / "subscribed_members_export_5f2a.csv").write_text(
        "Email Address,First Name,Company,What would you like to read?,MEMBER_RATING\n"
        'ann@example.org,Ann,Research Ltd,"Research, Events",3\n'
        "bob@example.org,Bob,,,2\n",
        encoding="utf-8",
    )

    code, output = run(runner, "subscribers", "import", "subscribed_members_export_5f2a.csv")

    assert code == 0, output
    assert (
        "'What would you like to read?' looks like an interest-group column: to make its "
        "groups topics, add it to newsletter.yaml and import again:\n"
        "  imports:\n"
        "    group_columns:\n"
        "    - What would you like to read?\n"
    ) in output
    assert "'Company' look" not in output


def test_a_plain_csvs_other_columns_are_attributes_unless_ignored(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    (project / "sheet.csv").write_text(
        "email,name,Country,Notes\nann@example.org,Ann,GB,met at the fair\n", encoding="utf-8"
    )
    (project / "later.csv").write_text(
        "email,Country,Phone\nbob@example.org,FR,555-0100\n", encoding="utf-8"
    )

    code, output = run(runner, "subscribers", "import", "sheet.csv")
    assert code == 0, output
    assert output.splitlines()[:2] == [
        "Read sheet.csv (comma-delimited): email from 'email', name from 'name'",
        "Kept as attributes: 'Country', 'Notes' (--ignore-other-columns leaves them out)",
    ]
    ann = project_store.find("ann@example.org")
    assert ann is not None and ann.attributes == {"Country": "GB", "Notes": "met at the fair"}

    code, output = run(runner, "subscribers", "import", "later.csv", "--ignore-other-columns")
    assert code == 0, output
    assert output.splitlines()[:2] == [
        "Read later.csv (comma-delimited): email from 'email'",
        "Ignored columns: 'Country', 'Phone'",
    ]
    bob = project_store.find("bob@example.org")
    assert bob is not None and bob.attributes == {}
