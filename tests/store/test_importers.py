"""Other services' exports: every opt-out arrives suppressed, with the source's record.

The fixtures in exports/ follow each service's documented (or, where undocumented,
sampled) columns, with non-ASCII names, quoted commas, '&' in group names, empty
optional columns, a byte order mark and CRLF line ends (see docs/store.md).
"""

from __future__ import annotations

import shutil
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from newsletter.send import campaign_rows
from newsletter.store import Store, open_store_url
from newsletter.store.csv_import import ImportOptions, ImportSummary, import_csv
from newsletter.store.importers.topics import suggested_topics
from newsletter.store.imports import import_file
from newsletter.store.schema import ledger as ledger_table
from newsletter.store.schema import subscribers
from tests.store.databases import postgres_schema

EXPORTS = Path(__file__).parent / "exports"
MAILCHIMP = [
    "subscribed_members_export_5f2a.csv",
    "unsubscribed_members_export_5f2a.csv",
    "cleaned_members_export_5f2a.csv",
]
# Every fixture, and the addresses in it that opted out, bounced, complained or left.
OPTED_OUT = {
    "unsubscribed_members_export_5f2a.csv": {"ines@example.org", "olu@example.org"},
    "cleaned_members_export_5f2a.csv": {"gone@example.org"},
    "email_list.breastfeeding-world.csv": {"off@example.org", "lapsed@example.org"},
    "members.2026-11-29.csv": {"quiet@example.org", "deleted@example.org"},
    "kit-subscribers.csv": {"kit2@example.org", "kit3@example.org", "kit4@example.org"},
    "listmonk-subscribers.csv": {"lm2@example.org", "lm3@example.org"},
    "buttondown-subscribers.csv": {"bd2@example.org", "bd4@example.org"},
    "beehiiv-subscribers.csv": {"bh2@example.org", "bh4@example.org"},
    "mailerlite-subscribers.csv": {"ml2@example.org", "ml3@example.org", "ml4@example.org"},
}


def imported(store: Store, name: str, tmp_path: Path, **options: Any) -> ImportSummary:
    path = tmp_path / name
    shutil.copy(EXPORTS / name, path)
    return import_csv(store, path, ImportOptions(**options))


def record(store: Store, email: str) -> dict[str, Any]:
    return store.describe(email)


def test_mailchimp_subscribed_members(store: Store, tmp_path: Path) -> None:
    summary = imported(
        store,
        "subscribed_members_export_5f2a.csv",
        tmp_path,
        topic_map={"Food & Drink": "stories"},
    )

    assert (summary.format_name, summary.kind) == ("mailchimp", "subscribed members")
    assert (summary.added, summary.invalid) == (3, 0)
    zoe = record(store, "zoe@example.org")
    assert (zoe["status"], zoe["name"]) == ("active", "Zoë Łukasiewicz")
    assert zoe["topics"] == ["research", "stories"]  # "Food & Drink" mapped, Research by slug
    assert (zoe["subscribed_at"], zoe["subscribed_ip"]) == ("2023-04-01T10:00:00Z", "203.0.113.5")
    assert (zoe["confirmed_at"], zoe["confirmed_ip"]) == ("2023-04-01T10:05:00Z", "203.0.113.6")
    assert zoe["attributes"] == {
        "Phone Number": "+48 555 0100",
        "mailchimp_member_rating": "4",
        "timezone": "Europe/Warsaw",
        "country": "PL",
        "region": "MZ",
        "mailchimp_leid": "1001",
        "mailchimp_euid": "abc123",
        "notes": "Met at the fair, Warsaw",
    }
    mei = record(store, "mei@example.org")
    assert (mei["name"], mei["topics"]) == ("Mei Chen, PhD", ["research", "events"])
    amir = record(store, "amir@example.org")
    assert (amir["status"], amir["topics"], amir["confirmed_at"]) == ("active", [], None)
    # A tag with a comma inside its quotes is one value; VIP has no topic: reported once.
    assert summary.unknown_topics == {"VIP": 1, "Breastfeeding, milk banks": 1}
    assert "LATITUDE" not in summary.attribute_columns


def test_mailchimp_unsubscribed_and_cleaned_members_arrive_suppressed(
    store: Store, tmp_path: Path
) -> None:
    unsubscribed = imported(store, "unsubscribed_members_export_5f2a.csv", tmp_path)
    cleaned = imported(store, "cleaned_members_export_5f2a.csv", tmp_path)

    assert unsubscribed.kind == "unsubscribed members"
    assert cleaned.kind == "cleaned members"
    ines = record(store, "ines@example.org")
    assert (ines["status"], ines["unsubscribed_at"]) == ("unsubscribed", "2024-02-03T04:05:06Z")
    assert ines["unsubscribe_reason"] == (
        "I no longer want to receive these emails (campaign 'Spring issue')"
    )
    assert (ines["subscribed_at"], ines["subscribed_ip"]) == (
        "2022-01-01T09:00:00Z",
        "198.51.100.7",
    )
    assert record(store, "olu@example.org")["unsubscribe_reason"] == (
        "Other: Too many emails, sorry"
    )
    gone = record(store, "gone@example.org")
    assert gone["status"] == "bounced"
    assert [(e["event"], e["at"], e["detail"]) for e in gone["events"]] == [
        (
            "bounced",
            "2024-06-07T08:09:10Z",
            {"reason": "cleaned by Mailchimp (the address bounced) after campaign 'Summer issue'"},
        )
    ]
    # Unknown tags of opted-out rows do not matter and are not reported.
    assert unsubscribed.unknown_topics == {}


def test_a_mailchimp_zip_imports_every_file_opt_outs_first(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "audience_export_5f2a.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for name in MAILCHIMP:
            out.write(EXPORTS / name, f"audience_export_5f2a/{name}")
        # The same person in two files: the opt-out wins, whatever the order.
        out.writestr(
            "subscribed_members_export_extra.csv",
            "Email Address,First Name,MEMBER_RATING,OPTIN_TIME\nines@example.org,Inês,2,\n",
        )

    summaries = import_file(store, archive, ImportOptions())

    assert [(s.path.name, s.kind) for s in summaries] == [
        ("unsubscribed_members_export_5f2a.csv", "unsubscribed members"),
        ("cleaned_members_export_5f2a.csv", "cleaned members"),
        ("subscribed_members_export_5f2a.csv", "subscribed members"),
        ("subscribed_members_export_extra.csv", "subscribed members"),
    ]
    assert store.counts()["status"] == {
        "pending": 0,
        "active": 3,
        "unsubscribed": 2,
        "bounced": 1,
        "complained": 0,
    }
    assert summaries[-1].suppressed == 1
    assert record(store, "ines@example.org")["source"] == (
        "import:audience_export_5f2a.zip/unsubscribed_members_export_5f2a.csv"
    )


def test_substack(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "email_list.breastfeeding-world.csv", tmp_path)

    assert summary.format_name == "substack"
    paid = record(store, "paid@example.org")
    assert (paid["status"], paid["subscribed_at"]) == ("active", "2023-02-01T12:00:00Z")
    assert paid["attributes"] == {
        "substack_plan": "yearly",
        "substack_expiry": "2025-12-01T00:00:00.000Z",
        "substack_first_payment_at": "2023-02-01T12:00:00.000Z",
        "substack_active_subscription": "true",
    }
    assert record(store, "free@example.org")["status"] == "active"
    off = record(store, "off@example.org")
    assert (off["status"], off["unsubscribe_reason"]) == (
        "unsubscribed",
        "email disabled in Substack",
    )
    assert record(store, "lapsed@example.org")["status"] == "unsubscribed"
    assert [str(r) for r in summary.rejected] == [
        "line 6: email_disabled 'maybe' is not understood; expected true or false"
    ]
    assert store.find("weird@example.org") is None


def test_ghost(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "members.2026-11-29.csv", tmp_path)

    assert summary.format_name == "ghost"
    anna = record(store, "anna@example.org")
    assert (anna["name"], anna["status"], anna["topics"]) == (
        "Anna, the editor",
        "active",
        ["research"],
    )
    assert anna["attributes"] == {
        "ghost_id": "6401",
        "ghost_complimentary_plan": "false",
        "ghost_tiers": "Free",
    }
    quiet = record(store, "quiet@example.org")
    assert (quiet["status"], quiet["name"]) == ("unsubscribed", "Søren Kierkegaard")
    assert quiet["unsubscribe_reason"] == "not subscribed to emails in Ghost"
    assert quiet["attributes"]["ghost_stripe_customer_id"] == "cus_123"
    deleted = record(store, "deleted@example.org")
    assert (deleted["status"], deleted["unsubscribed_at"]) == (
        "unsubscribed",
        "2024-01-01T00:00:00Z",
    )
    assert summary.unknown_topics == {"Food & Drink": 1}


def test_kit(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "kit-subscribers.csv", tmp_path)

    assert summary.format_name == "kit"
    statuses = {s.email: s.status for s in store.subscribers()}
    assert statuses == {
        "kit1@example.org": "active",
        "kit2@example.org": "unsubscribed",
        "kit3@example.org": "bounced",
        "kit4@example.org": "complained",
        "kit5@example.org": "pending",
    }
    chloe = record(store, "kit1@example.org")
    assert (chloe["name"], chloe["topics"]) == ("Chloé", ["research", "events"])
    assert chloe["attributes"] == {"Company": "ACME & Sons"}
    assert chloe["subscribed_at"] == "2023-01-01T10:00:00Z"
    dmitri = record(store, "kit2@example.org")
    assert (dmitri["unsubscribed_at"], dmitri["unsubscribe_reason"]) == (
        "2024-01-01T10:00:00Z",
        "cancelled in Kit",
    )
    assert str(summary.rejected[0]).startswith("line 7: state 'zombie' is not a status")


def test_listmonk(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "listmonk-subscribers.csv", tmp_path)

    assert summary.format_name == "listmonk"
    li = record(store, "lm1@example.org")
    assert (li["name"], li["status"], li["subscribed_at"]) == (
        "李伟",
        "active",
        "2021-01-01T10:00:00.123456Z",
    )
    assert li["attributes"] == {
        "city": "Bonn",
        "age": "30",
        "listmonk_uuid": "a1b2c3d4-0000-4000-8000-000000000001",
    }
    assert record(store, "lm2@example.org")["unsubscribe_reason"] == "blocklisted in listmonk"
    assert record(store, "lm3@example.org")["status"] == "unsubscribed"


def test_buttondown(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "buttondown-subscribers.csv", tmp_path)

    assert summary.format_name == "buttondown"
    premium = record(store, "bd1@example.org")
    assert (premium["status"], premium["topics"]) == ("active", ["research"])
    assert premium["attributes"] == {
        "plan": "gold",
        "buttondown_referrer_url": "https://example.com/post",
        "buttondown_upgrade_date": "2022-02-01T00:00:00Z",
        "buttondown_secondary_id": "1",
        "buttondown_type": "premium",
    }
    gone = record(store, "bd2@example.org")
    assert (gone["status"], gone["unsubscribed_at"], gone["unsubscribe_reason"]) == (
        "unsubscribed",
        "2023-01-01T00:00:00Z",
        "Too much, honestly",
    )
    assert record(store, "bd3@example.org")["status"] == "pending"
    assert record(store, "bd4@example.org")["status"] == "bounced"
    assert [r.line for r in summary.rejected] == [7]
    assert "'mystery'" in summary.rejected[0].reason


def test_every_opted_out_row_of_every_format_is_suppressed_and_never_a_recipient(
    store: Store, tmp_path: Path
) -> None:
    for name in OPTED_OUT:
        imported(store, name, tmp_path)
    opted_out = set().union(*OPTED_OUT.values())

    recipients = {subscriber.email for subscriber in store.recipients(None)}
    # The campaign snapshot a send to everyone takes (one INSERT ... SELECT).
    campaign = campaign_rows.start_campaign(
        store, slug="first-issue", issue_path="issues/first.md", subject="First",
        topics=[], provider="outbox",
    )  # fmt: skip
    with store.engine.connect() as connection:
        snapshot = set(
            connection.scalars(
                select(subscribers.c.email)
                .join(ledger_table, ledger_table.c.subscriber_id == subscribers.c.id)
                .where(ledger_table.c.campaign_id == campaign.id)
            )
        )

    assert recipients and not recipients & opted_out
    assert snapshot == recipients
    for email in sorted(opted_out):
        assert record(store, email)["status"] in ("unsubscribed", "bounced", "complained")
    # ... and a later import of the same people as active changes nothing for them.
    again = tmp_path / "again.csv"
    again.write_text("email,status\n" + "".join(f"{e},active\n" for e in opted_out))
    assert import_csv(store, again).suppressed == len(opted_out)


def test_an_unknown_status_is_rejected_in_a_plain_csv_too(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,status\nann@example.org,gone fishing\nbob@example.org,opted out\n")

    summary = import_csv(store, path)

    assert [str(r) for r in summary.rejected] == [
        "line 2: unknown status 'gone fishing'; use one of pending, active, unsubscribed, "
        "bounced, complained"
    ]
    assert record(store, "bob@example.org")["status"] == "unsubscribed"


@pytest.mark.parametrize("status", ["unsubscribed", "bounced", "complained"])
def test_a_plain_list_of_opt_outs_comes_over_as_suppressions(
    store: Store, tmp_path: Path, status: str
) -> None:
    path = tmp_path / "opt-outs.csv"
    path.write_text("email,topics\nann@example.org,no-such-topic\nbob@example.org,\n")

    summary = import_csv(store, path, status=status)

    assert (summary.added, summary.invalid) == (2, 0)  # topics do not matter for them
    assert {s.status for s in store.subscribers()} == {status}
    assert store.count_recipients(None) == 0


def test_control_characters_are_never_stored(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(
        b'email,name,attributes\nann@example.org,"Ann\x1b[31m\x07 Lee\xe2\x80\xae",'
        b'"{""city\\u0000"": ""Ly\\u0008on""}"\n'
    )

    import_csv(store, path)

    ann = record(store, "ann@example.org")
    assert (ann["name"], ann["attributes"]) == ("Ann[31m Lee", {"city": "Lyon"})


def test_suggested_topics_are_valid_yaml_with_slug_ids() -> None:
    text = suggested_topics(["Food & Drink", "VIP", "Breastfeeding, milk banks", "Ça va"])

    assert yaml.safe_load(text) == [
        {"id": "food-drink", "name": "Food & Drink"},
        {"id": "vip", "name": "VIP"},
        {"id": "breastfeeding-milk-banks", "name": "Breastfeeding, milk banks"},
        {"id": "ca-va", "name": "Ça va"},
    ]


def test_an_export_imports_back_into_a_fresh_store_unchanged(
    store: Store, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    from newsletter.store.csv_export import write_csv

    for name in OPTED_OUT:
        imported(store, name, tmp_path, topic_map={"Food & Drink": "stories"})
    store.add("eq@example.org", name="=1+1", attributes={"note": "-5"})
    store.add("-dash@example.org", name="'=quoted")
    export = tmp_path / "export.csv"
    with export.open("w", encoding="utf-8", newline="") as out:
        write_csv(store.records(), out)

    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            fresh_url = database_url.replace("newsletter.db", "fresh.db")
        else:
            fresh_url = stack.enter_context(
                postgres_schema(request.getfixturevalue("postgres_url"))
            )
        fresh = open_store_url(fresh_url, store.topics)
        stack.callback(fresh.close)

        summary = import_csv(fresh, export)

        assert summary.invalid == 0
        assert _comparable(fresh) == _comparable(store)


def _comparable(store: Store) -> list[dict[str, Any]]:
    skip = {"created_at", "updated_at", "unsubscribe_campaign_id"}
    return [
        {key: value for key, value in row.items() if key not in skip}
        for row in sorted(store.records(), key=lambda row: row["email"])
    ]


def test_a_short_row_without_its_status_is_rejected_not_made_active(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "kit.csv"
    path.write_text(
        "first_name,email,state,created_at,canceled_at\n"
        "Ann,ann@example.org\n"
        "Bob,bob@example.org,,2023-01-01,\n"
        "Cat,cat@example.org,cancelled\n",
        encoding="utf-8",
    )

    summary = import_csv(store, path)

    assert [str(r) for r in summary.rejected] == [
        "line 2: no state; the row is not imported rather than guessed active",
        "line 3: no state; the row is not imported rather than guessed active",
    ]
    assert [(s.email, s.status) for s in store.subscribers()] == [
        ("cat@example.org", "unsubscribed")
    ]


def test_mailchimp_non_subscribed_contacts_are_never_imported(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "nonsubscribed_members_export_5f2a.csv"
    path.write_text(
        "Email Address,First Name,MEMBER_RATING,OPTIN_TIME\nbuyer@example.org,Bea,2,\n",
        encoding="utf-8",
    )

    summary = import_csv(store, path)

    assert summary.kind == "non-subscribed contacts"
    assert [str(r) for r in summary.rejected] == [
        "line 2: a non-subscribed Mailchimp contact never opted in to marketing email; "
        "it is not imported"
    ]
    assert store.find("buyer@example.org") is None


def test_a_format_chosen_by_name_rejects_rows_it_cannot_read_rather_than_guess(
    store: Store, tmp_path: Path
) -> None:
    summary = imported(store, "members.2026-11-29.csv", tmp_path, source_format="listmonk")

    assert (summary.format_name, summary.added, summary.invalid) == ("listmonk", 0, 3)
    assert summary.rejected[0].reason == (
        "no status; the row is not imported rather than guessed active"
    )


def test_beehiiv(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "beehiiv-subscribers.csv", tmp_path)

    assert (summary.format_name, summary.format_title) == ("beehiiv", "beehiiv export")
    statuses = {s.email: s.status for s in store.subscribers()}
    assert statuses == {
        "ana@example.org": "active",
        "bh2@example.org": "unsubscribed",
        "bh3@example.org": "pending",
        "bh4@example.org": "bounced",
        "bh5@example.org": "pending",
        "bh6@example.org": "pending",
        "kofi@example.org": "active",
    }
    ana = record(store, "ana@example.org")
    assert (ana["name"], ana["subscribed_at"]) == ("Ana Sousa", "2023-05-02T14:03:11Z")
    assert ana["attributes"] == {
        "beehiiv_subscription_tier": "free",
        "utm_source": "twitter",
        "utm_medium": "social",
        "utm_channel": "website",
        "utm_campaign": "launch",
        "referring_site": "https://t.co/",
    }
    assert record(store, "kofi@example.org")["name"] == "Kofi Mensah-Bonsu, Jr."
    bram = record(store, "bh2@example.org")
    assert bram["unsubscribe_reason"] == "inactive in beehiiv (unsubscribed)"
    invalid = record(store, "bh4@example.org")
    assert [(e["event"], e["detail"]) for e in invalid["events"]] == [
        ("bounced", {"reason": "invalid in beehiiv (the address failed its validation)"})
    ]
    assert record(store, "bh6@example.org")["attributes"]["beehiiv_status"] == "needs_attention"
    [unknown] = summary.rejected
    assert str(unknown).startswith("line 9: status 'archived' is not a status this import")


def test_mailerlite_semicolons_groups_and_surnames(store: Store, tmp_path: Path) -> None:
    summary = imported(store, "mailerlite-subscribers.csv", tmp_path)

    assert (summary.format_name, summary.delimiter) == ("mailerlite", ";")
    statuses = {s.email: s.status for s in store.subscribers()}
    assert statuses == {
        "maja@example.org": "active",
        "ml2@example.org": "unsubscribed",
        "ml3@example.org": "bounced",
        "ml4@example.org": "complained",
        "ml5@example.org": "pending",
    }
    maja = record(store, "maja@example.org")
    assert (maja["name"], maja["topics"]) == ("Maja Lenarčič", ["research", "events"])
    assert (maja["subscribed_at"], maja["confirmed_at"]) == (
        "2024-01-10T08:00:00Z",
        "2024-01-10T08:05:00Z",
    )
    assert maja["attributes"] == {
        "Location": "Ljubljana, Slovenia",
        "Company": "Mlekarna d.o.o.",
        "Phone": "+386 1 555 0100",
    }
    assert record(store, "ml2@example.org")["unsubscribe_reason"] == "unsubscribed in MailerLite"
    junk = record(store, "ml4@example.org")
    assert junk["events"][0]["detail"] == {"reason": "marked as junk (spam) in MailerLite"}
    # Opted-out rows' unknown groups do not matter and are not reported.
    assert summary.unknown_topics == {}
    [paused] = summary.rejected
    assert str(paused).startswith("line 7: Status 'Paused' is not a status this import")


def test_mailerlite_with_an_email_column_and_commas(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    path.write_text(
        "Email,Name,Last name,Groups,Status,Subscribed\n"
        'ann@example.org,Ann,Lee,"Stories, Travel",Active,2024-02-02 10:00:00\n',
        encoding="utf-8",
    )

    summary = import_csv(store, path)

    assert summary.format_name == "mailerlite"
    ann = record(store, "ann@example.org")
    assert (ann["name"], ann["topics"]) == ("Ann Lee", ["stories"])
    assert summary.unknown_topics == {"Travel": 1}


def test_a_plain_csv_with_name_and_last_name_keeps_the_surname(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,name,last name\nmaja@example.org,Maja,Lenarčič\n", encoding="utf-8")

    import_csv(store, path)

    assert record(store, "maja@example.org")["name"] == "Maja Lenarčič"


def test_a_mailchimp_unsubscribe_reported_as_spam_arrives_complained(
    store: Store, tmp_path: Path
) -> None:
    fixture = (EXPORTS / "unsubscribed_members_export_5f2a.csv").read_text(encoding="utf-8-sig")
    path = tmp_path / "unsubscribed_members_export_5f2a.csv"
    path.write_text(
        fixture + "spam@example.org,Sam,,,,1,,,,,,,,,,,,2024-07-01 10:00:00,Summer issue,c3,"
        "Abuse (reported as spam),,2003,pqr,,\n"
        + "junk@example.org,Jo,,,,1,,,,,,,,,,,,2024-07-02 10:00:00,,,"
        "The emails are spam and should be reported,,2004,stu,,\n",
        encoding="utf-8",
    )

    import_csv(store, path)

    spam = record(store, "spam@example.org")
    assert spam["status"] == "complained"
    assert spam["events"][0]["detail"] == {
        "reason": "Abuse (reported as spam) (campaign 'Summer issue')"
    }
    assert record(store, "junk@example.org")["status"] == "complained"
    assert record(store, "ines@example.org")["status"] == "unsubscribed"
    assert record(store, "olu@example.org")["status"] == "unsubscribed"
