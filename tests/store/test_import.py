"""Importing CSV files: every row accounted for, nothing reactivated, safe to re-run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import text

from newsletter.errors import ImportFileError
from newsletter.store import Store, open_store_url
from newsletter.store.csv_import import ImportSummary, import_csv, rejects_path_for
from tests.store.databases import postgres_schema

EXAMPLE = Path(__file__).resolve().parents[2] / "subscribers.example.csv"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def counts(summary: ImportSummary) -> tuple[int, int, int, int, int]:
    """(added, updated, unchanged, suppressed, invalid)"""
    return (
        summary.added,
        summary.updated,
        summary.unchanged,
        summary.suppressed,
        summary.invalid,
    )


def test_the_example_list_imports_completely(store: Store) -> None:
    summary = import_csv(store, EXAMPLE)

    assert counts(summary) == (35, 0, 0, 0, 0)
    assert store.counts()["status"] == {
        "pending": 3,
        "active": 28,
        "unsubscribed": 2,
        "bounced": 1,
        "complained": 1,
    }
    chloe = store.describe("chloe.martin@example.com")
    assert chloe["name"] == "Chloé Martin"
    assert chloe["topics"] == ["stories", "events"]
    assert chloe["subscribed_at"] == "2025-01-14T11:50:00Z"
    assert chloe["source"] == "Big Latch On 2024 sheet"


def test_importing_the_same_file_again_changes_nothing(store: Store) -> None:
    import_csv(store, EXAMPLE)
    before = [store.describe(s.email) for s in store.subscribers()]

    summary = import_csv(store, EXAMPLE)

    assert counts(summary) == (0, 0, 31, 4, 0)  # 4 unsubscribed, bounced or complained
    assert [store.describe(s.email) for s in store.subscribers()] == before


def test_suppressed_and_erased_addresses_are_left_alone(store: Store, tmp_path: Path) -> None:
    gone = store.add("ann@example.org")
    store.unsubscribe(gone.id, source="web")
    store.add("bob@example.org")
    store.forget("bob@example.org")
    path = write(tmp_path / "list.csv", "email,status\nANN@example.org,active\nbob@example.org,\n")

    summary = import_csv(store, path)

    assert counts(summary) == (0, 0, 0, 2, 0)
    assert store.find("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert store.find("bob@example.org") is None


@pytest.mark.parametrize("imported", ["bounced", "unsubscribed", "active", "pending"])
def test_an_import_never_overwrites_a_complaint(
    store: Store, tmp_path: Path, imported: str
) -> None:
    angry = store.add("ann@example.org")
    store.mark(angry.id, "complained", reason="abuse report")
    path = write(tmp_path / "old-platform.csv", f"email,status\nann@example.org,{imported}\n")

    summary = import_csv(store, path)

    assert counts(summary) == (0, 0, 0, 1, 0)
    record = store.describe("ann@example.org")
    assert record["status"] == "complained"
    assert [event["event"] for event in record["events"]] == ["complained"]


def test_an_import_merges_names_and_topics_but_never_raises_a_status(
    store: Store, tmp_path: Path
) -> None:
    store.add("ann@example.org", topics=["research"], status="pending")
    store.add("bob@example.org", topics=["events"])
    path = write(
        tmp_path / "list.csv",
        "email,name,topics,status\n"
        "ann@example.org,Ann Lee,stories,active\n"
        "bob@example.org,,,unsubscribed\n",
    )

    summary = import_csv(store, path)

    assert counts(summary) == (0, 2, 0, 0, 0)
    ann = store.find("ann@example.org")
    assert ann is not None
    assert (ann.name, ann.status, ann.topics) == ("Ann Lee", "pending", ("research", "stories"))
    bob = store.describe("bob@example.org")
    assert (bob["status"], bob["unsubscribe_source"]) == ("unsubscribed", "import:list.csv")


def test_attributes_and_the_original_signup_time_are_imported_and_merged(
    store: Store, tmp_path: Path
) -> None:
    first = write(
        tmp_path / "first.csv",
        "email,name,subscribed_at,attributes\n"
        'ann@example.org,Ann,2025-03-04T05:06:07Z,"{""city"": ""Lyon"", ""note"": ""é""}"\n'
        "bob@example.org,Bob,,\n",
    )
    again = write(
        tmp_path / "again.csv",
        'email,attributes\nann@example.org,"{""plan"": ""yearly""}"\n',
    )

    assert counts(import_csv(store, first)) == (2, 0, 0, 0, 0)
    assert counts(import_csv(store, again)) == (0, 1, 0, 0, 0)

    ann = store.describe("ann@example.org")
    assert ann["attributes"] == {"city": "Lyon", "note": "é", "plan": "yearly"}
    assert ann["subscribed_at"].startswith("2025-03-04T05:06:07")
    assert store.describe("bob@example.org")["attributes"] == {}


def test_bom_semicolons_and_header_aliases(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "crm.csv",
        "\ufeffE-Mail Address;First Name;Last Name;Interests;Phone\r\n"
        "ann@example.org;Ann;Lee;research|events;555-0100\r\n",
    )

    summary = import_csv(store, path, topics=["stories"])

    assert summary.delimiter == ";"
    assert summary.columns == {
        "email": "E-Mail Address",
        "first_name": "First Name",
        "last_name": "Last Name",
        "topics": "Interests",
    }
    assert summary.ignored_columns == []
    assert summary.attribute_columns == ["Phone"]  # kept, as other services' own fields are
    assert store.find("ann@example.org") == store.get(1)
    assert store.get(1).attributes == {"Phone": "555-0100"}  # type: ignore[union-attr]
    assert store.get(1).name == "Ann Lee"  # type: ignore[union-attr]
    assert store.get(1).topics == ("research", "stories", "events")  # type: ignore[union-attr]


def test_tab_delimited(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.tsv", "email\tname\nann@example.org\tAnn, Lee\n")

    summary = import_csv(store, path)

    assert (summary.delimiter, summary.added) == ("\t", 1)
    assert store.find("ann@example.org").name == "Ann, Lee"  # type: ignore[union-attr]


def test_other_encodings_on_request(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "excel.csv", "email,name\nrenee@example.org,Renée\n", "cp1252")

    import_csv(store, path, encoding="cp1252")

    assert store.find("renee@example.org").name == "Renée"  # type: ignore[union-attr]


def test_rejected_rows_are_reported_and_written_beside_the_input(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "list.csv",
        "email,name,topics\n"
        "ann@example.org,Ann,research\n"
        "not-an-address,Bob,\n"
        "cat@example.org,Cat,recipes\n"
        "ANN@example.org,Ann again,\n"
        'dan@example.org,=HYPERLINK("http://evil.example"),stories\n',
    )

    summary = import_csv(store, path)

    assert counts(summary) == (2, 0, 0, 0, 3)
    assert [str(rejected) for rejected in summary.rejected] == [
        "line 3: 'not-an-address' is not a valid email address: "
        "An email address must have an @-sign.",
        "line 4: unknown topic 'recipes'; known topics: research, stories, events "
        "(add new topics under 'topics:' in newsletter.yaml)",
        "line 5: duplicate of line 2 (ANN@example.org); only the first is imported",
    ]
    assert summary.unknown_topics == {"recipes": 1}
    assert summary.rejects_path == tmp_path / "list.rejects.csv"
    with summary.rejects_path.open(encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["line", "error", "email", "name", "topics"]
    assert [row[0] for row in rows[1:]] == ["3", "4", "5"]
    assert rows[3][2:] == ["ANN@example.org", "Ann again", ""]


def test_a_clean_run_removes_the_stale_rejects_file(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "email\nann@example.org\nbroken\n")
    import_csv(store, path)
    assert rejects_path_for(path).exists()

    write(path, "email\nann@example.org\nbob@example.org\n")
    summary = import_csv(store, path)

    assert summary.rejects_path is None
    assert not rejects_path_for(path).exists()


def test_an_unbalanced_quote_costs_only_its_own_row(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        'email,name\nann@example.org,"Ann\nbob@example.org,Bob\ncat@example.org,"Cat"x\n'
        "dan@example.org,Dan\n",
    )

    summary = import_csv(store, path)

    assert [s.email for s in store.subscribers()] == ["bob@example.org", "dan@example.org"]
    assert [rejected.line for rejected in summary.rejected] == [2, 4]
    assert "unbalanced" in summary.rejected[0].reason


def test_a_quoted_line_break_inside_an_ignored_column_is_fine(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", 'email,notes\nann@example.org,"line one\nline two"\n')

    assert counts(import_csv(store, path)) == (1, 0, 0, 0, 0)


def test_duplicates_are_found_across_chunks(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.store.csv_import.CHUNK_SIZE", 2)
    rows = "".join(f"reader{n}@example.org\n" for n in range(5))
    path = write(tmp_path / "list.csv", f"email\n{rows}READER1@example.org\n")

    summary = import_csv(store, path)

    assert counts(summary) == (5, 0, 0, 0, 1)
    assert str(summary.rejected[0]) == (
        "line 7: duplicate of line 3 (READER1@example.org); only the first is imported"
    )


def test_an_interrupted_import_keeps_whole_chunks_and_a_rerun_completes_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("newsletter.store.csv_import.CHUNK_SIZE", 3)
    path = write(
        tmp_path / "list.csv", "email\n" + "".join(f"reader{n}@example.org\n" for n in range(10))
    )

    def interrupt_after_the_first_chunk(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_csv(store, path, progress=interrupt_after_the_first_chunk)
    assert store.count_recipients(None) == 3

    summary = import_csv(store, path)

    assert counts(summary) == (7, 0, 3, 0, 0)
    assert store.count_recipients(None) == 10


def test_a_dry_run_saves_nothing_and_writes_no_file(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "list.csv", "email\nann@example.org\nbroken\n")

    summary = import_csv(store, path, dry_run=True)

    assert counts(summary) == (1, 0, 0, 0, 1)
    assert store.find("ann@example.org") is None
    assert not rejects_path_for(path).exists()


def test_progress_reaches_the_file_size(store: Store) -> None:
    seen: list[tuple[int, int]] = []

    import_csv(store, EXAMPLE, progress=lambda done, total: seen.append((done, total)))

    size = EXAMPLE.stat().st_size
    assert seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "{path} is empty; a subscribers CSV starts with a header line such as: "
            "email,name,topics",
        ),
        (
            "\n\n",
            "{path} is empty; a subscribers CSV starts with a header line such as: "
            "email,name,topics",
        ),
        (
            "name,topics\nAnn,research\n",
            "{path}:1: no email column in the header (found 'name', 'topics'); name the column "
            "with the addresses 'email' (E-mail and Email Address work too)",
        ),
        (
            "email|name\nann@example.org|Ann\n",
            "{path}:1: no email column in the header (found 'email|name'); name the column "
            "with the addresses 'email' (E-mail and Email Address work too); the header is a "
            "single column: if the file is delimited by '|', pass --delimiter (comma, semicolon "
            "and tab are recognised on their own)",
        ),
        (
            "email,E-mail\na@example.org,b@example.org\n",
            "{path}:1: columns 'email' and 'E-mail' both hold the email; remove or rename one "
            "of them",
        ),
    ],
)
def test_files_that_cannot_be_imported_at_all(
    store: Store, tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "list.csv", text)

    with pytest.raises(ImportFileError) as raised:
        import_csv(store, path)
    assert str(raised.value) == message.format(path=path)


def test_a_wrong_encoding_fails_before_anything_is_imported(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        "email,name\nann@example.org,Ann\nrenee@example.org,Renée\n",
        "latin-1",
    )

    with pytest.raises(ImportFileError) as raised:
        import_csv(store, path)

    assert str(raised.value) == (
        f"{path}:3: not utf-8 text (byte 0xe9); save the file as UTF-8, or pass --encoding "
        "with its encoding (for Excel on Windows: --encoding cp1252)"
    )
    assert store.find("ann@example.org") is None


@pytest.mark.postgres
def test_postgresql_knows_the_imported_rows_at_once(postgres_url: str, tmp_path: Path) -> None:
    # Until the planner has statistics, PostgreSQL reads every remaining subscriber
    # for each page of a stream or a campaign: a 100,000-row list took 8x as long.
    # (SQLite's planner needs none for these queries.)
    path = tmp_path / "list.csv"
    path.write_text(
        "email,topics\n" + "".join(f"r{n}@example.org,research\n" for n in range(300)),
        encoding="utf-8",
    )
    with postgres_schema(postgres_url) as url:
        store = open_store_url(url, ("research",))
        import_csv(store, path)
        estimates = _row_estimates(store)
        store.close()
    assert estimates == {"subscribers": 300, "subscriber_topics": 300}


def _row_estimates(store: Store) -> dict[str, float]:
    with store.engine.connect() as connection:
        estimates = dict(
            connection.execute(
                text(
                    "SELECT relname, reltuples FROM pg_class "
                    "WHERE relname IN ('subscribers', 'subscriber_topics') "
                    "AND relnamespace = current_schema()::regnamespace"
                )
            ).all()
        )
    return estimates


def test_rows_swallowed_by_a_multi_line_quoted_value_are_read_again(
    store: Store, tmp_path: Path
) -> None:
    # An unbalanced quote in a name runs the value over the next lines until a later
    # quote closes it; the rows in between must be imported, not lost.
    path = write(
        tmp_path / "list.csv",
        "email,name,notes\n"
        'ann@example.org,"Ann,\n'
        "bob@example.org,Bob,\n"
        'cat@example.org,Cat,closes it"\n'
        "dan@example.org,Dan,\n",
    )

    summary = import_csv(store, path)

    # cat's line holds the stray closing quote, inside its notes: it reads on its own
    assert [s.email for s in store.subscribers()] == [
        "bob@example.org",
        "cat@example.org",
        "dan@example.org",
    ]
    assert [rejected.line for rejected in summary.rejected] == [2]
    assert "unbalanced" in summary.rejected[0].reason
    assert summary.rows == 4  # every line after the header is accounted for


def test_rows_swallowed_into_an_ignored_column_are_read_again(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path / "list.csv",
        "email,notes\n"
        'ann@example.org,"a stray quote\n'
        "bob@example.org,\n"
        "cat@example.org,\n"
        'dan@example.org,closes"\n'
        'eve@example.org,"a real note\nover two lines"\n',
    )

    summary = import_csv(store, path)

    assert [s.email for s in store.subscribers()] == [
        "bob@example.org",
        "cat@example.org",
        "dan@example.org",
        "eve@example.org",
    ]
    assert [rejected.line for rejected in summary.rejected] == [2]
    assert summary.rows == 5


def test_a_swallowed_row_with_a_mistyped_address_is_rejected_on_its_own_line(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "list.csv",
        "email,name,notes\n"
        'ann@example.org,Ann,"a stray quote\n'
        "bob@example,Bob,\n"
        'cat@example.org,Cat,closes"\n',
    )

    summary = import_csv(store, path)

    assert [s.email for s in store.subscribers()] == ["cat@example.org"]
    assert [rejected.line for rejected in summary.rejected] == [2, 3]
    assert summary.rows == 3
