"""The columns an import keeps as attributes are bounded: how many, how long a name,
how long a value. A file over a limit stops before anything is written, with one line
naming the file, line and column and what to do (both databases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.store import Store

pytestmark = pytest.mark.usefixtures("project_store")

IGNORE = "or pass --ignore-other-columns to import none of the other columns"


def run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["subscribers", "import", *args])
    return result.exit_code, result.output


def test_a_hundred_attribute_columns_are_kept_and_one_more_stops_the_import(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    fields = [f"Field {n}" for n in range(1, 102)]
    row = ",".join(["ann@example.org", *(f"value {n}" for n in range(1, 102))])
    (project / "wide.csv").write_text(f"email,{','.join(fields)}\n{row}\n", encoding="utf-8")
    (project / "full.csv").write_text(
        f"email,{','.join(fields[:100])}\n{row.rsplit(',', 1)[0]}\n", encoding="utf-8"
    )

    code, output = run(runner, "wide.csv")

    assert (code, output) == (
        1,
        "Error: wide.csv:1: column 102 ('Field 101') would be the 101st kept as an "
        "attribute, and at most 100 are; remove the columns you do not need, "
        f"{IGNORE}; nothing was imported\n",
    )
    assert project_store.find("ann@example.org") is None

    code, output = run(runner, "full.csv")
    assert code == 0, output
    ann = project_store.find("ann@example.org")
    assert ann is not None and len(ann.attributes) == 100

    code, output = run(runner, "wide.csv", "--ignore-other-columns")
    assert code == 0, output


def test_an_attribute_name_over_a_thousand_characters_stops_the_import(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    question = "What would you like us to write about next? " * 25  # 1,100 characters
    (project / "survey.csv").write_text(
        f"email,Country,{question}\nann@example.org,GB,more photographs\n", encoding="utf-8"
    )

    code, output = run(runner, "survey.csv")

    assert (code, output) == (
        1,
        "Error: survey.csv:1: column 3 ('What would you like us to write about ne...') has "
        "a name of 1,099 characters, more than the 1,000 an attribute's name may have; "
        f"shorten it, {IGNORE}; nothing was imported\n",
    )
    assert project_store.find("ann@example.org") is None


def test_a_value_over_a_thousand_characters_stops_the_import_before_any_row_is_written(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    rows = [f"reader{n}@example.org,GB,a note" for n in range(2000)]
    rows[1500] = f"reader1500@example.org,GB,{'x' * 1001}"  # line 1,502: after a chunk
    rows[10] = f"reader10@example.org,GB,{'y' * 1000}"  # the limit itself is fine
    (project / "notes.csv").write_text(
        "email,Country,Notes\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )

    code, output = run(runner, "notes.csv")

    assert (code, output) == (
        1,
        "Error: notes.csv:1502: column 3 ('Notes') holds 1,001 characters, more than the "
        "1,000 an attribute may hold; shorten the value, remove the column, "
        f"{IGNORE}; nothing was imported\n",
    )
    assert sum(project_store.counts()["status"].values()) == 0  # not the first chunk either
    assert not (project / "notes.rejects.csv").exists()

    code, output = run(runner, "notes.csv", "--dry-run")
    assert code == 1 and "notes.csv:1502: column 3 ('Notes')" in output

    code, output = run(runner, "notes.csv", "--ignore-other-columns")
    assert code == 0, output
    assert sum(project_store.counts()["status"].values()) == 2000


def test_a_long_value_inside_a_row_swallowed_by_a_stray_quote_is_that_rows_rejection(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    # The stray quote opens a value that runs over the next rows: the import rejects the
    # first line and reads the others on their own, so the long value is no one's.
    swallowed = "\n".join(f"reader{n}@example.org,GB,{'z' * 100}" for n in range(1, 20))
    (project / "quote.csv").write_text(
        f'email,Country,Notes\nreader0@example.org,GB,"a stray quote\n{swallowed}\nend",GB\n',
        encoding="utf-8",
    )

    code, output = run(runner, "quote.csv")

    assert code == 0, output
    assert sum(project_store.counts()["status"].values()) == 19
    assert "line 2: a quoted value runs over several lines" in output


# -- attributes from a JSON cell (a plain CSV's `attributes`, listmonk's, Buttondown's
# `metadata`): the same limits, the same stop before anything is written.


def json_cell(value: object) -> str:
    return '"' + json.dumps(value).replace('"', '""') + '"'


def test_a_json_cell_over_a_hundred_attributes_stops_the_import(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    rows = [f"reader{n}@example.org,{json_cell({'city': 'Lyon'})}" for n in range(1200)]
    rows[1100] = f"reader1100@example.org,{json_cell({f'k{n}': 'v' for n in range(101)})}"
    rows[5] = f"reader5@example.org,{json_cell({f'k{n}': 'v' for n in range(100)})}"  # fine
    (project / "wide.csv").write_text(
        "email,attributes\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )

    code, output = run(runner, "wide.csv")

    assert (code, output) == (
        1,
        "Error: wide.csv:1102: column 2 ('attributes') holds 101 attributes, more than the "
        "100 a subscriber may have; keep the keys you need, or remove the column; nothing "
        "was imported\n",
    )
    assert sum(project_store.counts()["status"].values()) == 0  # not the first chunk either


@pytest.mark.parametrize(
    ("header", "row", "column"),
    [
        ("uuid,email,name,attributes,status", "{uuid},ann@example.org,Ann,{cell},enabled", 4),
        ("email,type,creation_date,metadata", "ann@example.org,regular,2024-01-02,{cell}", 4),
    ],
    ids=["listmonk", "buttondown"],
)
def test_a_long_json_value_or_key_stops_a_services_import(
    runner: CliRunner,
    project: Path,
    project_store: Store,
    header: str,
    row: str,
    column: int,
) -> None:
    name = header.split(",")[column - 1]
    uuid = "5e1f7a6c-0b1e-4a57-9e3c-6f7d8a9b0c1d"
    long_value = row.format(uuid=uuid, cell=json_cell({"bio": "x" * 1001}))
    (project / "value.csv").write_text(f"{header}\n{long_value}\n", encoding="utf-8")
    long_key = row.format(uuid=uuid, cell=json_cell({"q" * 1001: "yes"}))
    (project / "key.csv").write_text(f"{header}\n{long_key}\n", encoding="utf-8")

    assert run(runner, "value.csv") == (
        1,
        f"Error: value.csv:2: column {column} ('{name}') holds 1,001 characters under "
        "'bio', more than the 1,000 an attribute may hold; shorten the value, or remove the "
        "column; nothing was imported\n",
    )
    assert run(runner, "key.csv") == (
        1,
        f"Error: key.csv:2: column {column} ('{name}') has a key of 1,001 characters "
        f"('{'q' * 40}...'), more than the 1,000 an attribute's name may have; shorten it, "
        "or remove the column; nothing was imported\n",
    )
    assert project_store.find("ann@example.org") is None


def test_nested_json_objects_become_dotted_attributes_a_segment_can_test(
    runner: CliRunner, project: Path, project_store: Store
) -> None:
    cell = json_cell({"address": {"city": "Lyon", "geo": {"lat": 45.76}}, "langs": ["fr"]})
    (project / "nested.csv").write_text(
        f"email,attributes\nann@example.org,{cell}\nbob@example.org,\n", encoding="utf-8"
    )

    code, output = run(runner, "nested.csv")

    assert code == 0, output
    ann = project_store.find("ann@example.org")
    assert ann is not None
    assert ann.attributes == {
        "address.city": "Lyon",
        "address.geo.lat": "45.76",
        "langs": '["fr"]',  # a list stays JSON text
    }
    counted = runner.invoke(
        cli, ["subscribers", "count", "--segment", 'attributes["address.city"] == "Lyon"']
    )
    assert counted.exit_code == 0, counted.output
    assert ["total", "1"] in [line.split() for line in counted.output.splitlines()]  # Ann
