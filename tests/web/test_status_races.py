"""Status precedence, one report after another and with concurrent writers on
PostgreSQL (issue 20, item 3).

A complaint outranks a bounce, a bounce an unsubscribe, and nothing a provider, the
mailbox or an import reports brings anyone back. That must hold when the reports race:
a complaint committed while a bounce from the return mailbox, a webhook bounce, an
import or a one-click unsubscribe is already on its way to the same row stays a
complaint. SQLite takes its write lock at BEGIN, so only PostgreSQL can interleave them; the
same reports one after another run on both databases.

The tests line the writers up deterministically: a transaction of the test's own holds
the rows (``SELECT ... FOR UPDATE``); the complaints queue behind it first, every other
writer after them, and only then are the rows let go, so each later writer reads its
row while it is still active and writes after the complaint committed.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from newsletter.config import Config, load_config
from newsletter.models import Subscriber
from newsletter.send.mailbox import process_mailbox
from newsletter.send.return_tokens import ReturnTokens
from newsletter.store.csv_import import import_csv
from newsletter.web.context import Services
from newsletter.web.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.mailbox.conftest import fill
from tests.store.databases import holding_rows
from tests.web.conftest import SECRET, events_of
from tests.web.hooks import POSTMARK_PASSWORD, PostmarkHook

# Only PostgreSQL interleaves writers: SQLite's take the write lock at BEGIN.
concurrent = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
_numbers = iter(range(1, 1_000_000))


def sendgrid_event(kind: str, reader: Subscriber, **extra: Any) -> dict[str, Any]:
    return {
        "email": reader.email,
        "timestamp": int(time.time()),
        "event": kind,
        "sg_event_id": f"race-{kind}-{reader.id}-{next(_numbers)}",
        "subscriber_id": str(reader.id),
        **extra,
    }


class Writers:
    """Each writer in a thread of its own, as separate processes and requests would be;
    what they answered, and any exception, kept for the test."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.answers: list[object] = []

    def start(self, work: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.answers.append(work())
            except BaseException as error:  # reported by join()
                self.errors.append(error)

        thread = threading.Thread(target=run)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=60)
            assert not thread.is_alive(), "a writer never finished"
        assert not self.errors, self.errors


@pytest.fixture
def post_events(app: Flask, webhook_private_key: ec.EllipticCurvePrivateKey) -> Callable[..., int]:
    """Sign and post a SendGrid batch from any thread (a test client of its own each)."""

    def post(events: list[dict[str, Any]]) -> int:
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        signed = webhook_private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        response = app.test_client().post(
            "/webhooks/sendgrid",
            data=body,
            content_type="application/json",
            headers={
                SIGNATURE_HEADER: base64.b64encode(signed).decode(),
                TIMESTAMP_HEADER: stamp,
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.status_code

    return post


@pytest.fixture
def mailbox_config(project: Path, web_config: Config) -> Config:
    """The web app's project and database, with a return Maildir to process."""
    for part in ("new", "cur", "tmp"):
        (project / "returns" / part).mkdir(parents=True)
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["bounces"] = {"address": "bounces@breastfeedingworld.example"}
    data["mailbox"] = {"url": "maildir:returns"}
    data["database_url"] = web_config.database_url
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def hard_bounce_in_the_mailbox(config: Config, reader: Subscriber) -> None:
    message = fill(
        "postfix-user-unknown",
        reader.id,
        None,
        tokens=ReturnTokens(SECRET),
        link_key=reader.link_key,
        address=reader.email,
    )
    (config.root / "returns" / "new" / f"1796000000.{reader.id}.mx").write_bytes(message)


def import_file(tmp_path: Path, reader: Subscriber, status: str) -> Path:
    path = tmp_path / f"from-the-old-platform-{reader.id}.csv"
    path.write_text(f"email,status\n{reader.email},{status}\n", encoding="utf-8")
    return path


def status_events(site: Services, reader: Subscriber) -> list[str]:
    statuses = {"unsubscribed", "bounced", "complained"}
    return [event["event"] for event in events_of(site, reader.id) if event["event"] in statuses]


def test_a_complaint_stays_a_complaint_after_every_later_report_of_a_bounce(
    app: Flask,
    site: Services,
    post_events: Callable[..., int],
    mailbox_config: Config,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One after another, on both databases: the mailbox, SendGrid's and Postmark's
    webhooks and an import each report a bounce (and the import and a webhook an
    unsubscribe) for a reader who complained; none of them changes the row."""
    store = site.store
    angry = store.add("angry@example.org", source="test")
    post_events([sendgrid_event("spamreport", angry)])
    assert store.get(angry.id).status == "complained"  # type: ignore[union-attr]
    hard_bounce_in_the_mailbox(mailbox_config, angry)
    monkeypatch.setenv("POSTMARK_WEBHOOK_PASSWORD", POSTMARK_PASSWORD)
    credentials = base64.b64encode(f"postmark:{POSTMARK_PASSWORD}".encode()).decode()

    summary = process_mailbox(mailbox_config)
    post_events([sendgrid_event("bounce", angry, type="bounce", reason="550 5.1.1")])
    post_events([sendgrid_event("unsubscribe", angry)])
    postmark = app.test_client().post(
        "/webhooks/postmark",
        json=PostmarkHook.bounce_record(angry),
        headers={"Authorization": f"Basic {credentials}"},
    )
    imported = [
        import_csv(store, import_file(tmp_path, angry, status))
        for status in ("bounced", "unsubscribed")
    ]

    assert summary.counts["hard_bounce"] == 1  # the bounce was read and matched
    assert postmark.status_code == 200
    assert [result.suppressed for result in imported] == [1, 1]
    assert store.get(angry.id).status == "complained"  # type: ignore[union-attr]
    assert status_events(site, angry) == ["complained"]


@concurrent
def test_a_complaint_committed_first_is_never_overwritten_by_what_was_already_on_its_way(
    app: Flask,
    site: Services,
    post_events: Callable[..., int],
    mailbox_config: Config,
    database_url: str,
    tmp_path: Path,
) -> None:
    store = site.store
    by_mailbox, by_webhook, by_import, by_one_click = readers = [
        store.add(f"reader{n}@example.org", source="test") for n in range(4)
    ]
    hard_bounce_in_the_mailbox(mailbox_config, by_mailbox)
    one_click = f"/u/{site.signer.unsubscribe_token(by_one_click.id, None, by_one_click.link_key)}"
    writers = Writers()

    with holding_rows(database_url, [reader.id for reader in readers]) as holder:
        for reader in readers:  # one batch each, so each waits for its own row only
            writers.start(lambda reader=reader: post_events([sendgrid_event("spamreport", reader)]))
        holder.wait_for_waiters(len(readers))
        # Each reads its reader as active now, and waits behind the complaint to write.
        writers.start(lambda: process_mailbox(mailbox_config))
        writers.start(
            lambda: post_events([sendgrid_event("bounce", by_webhook, type="bounce", reason="550")])
        )
        writers.start(lambda: import_csv(store, import_file(tmp_path, by_import, "bounced")))
        writers.start(lambda: app.test_client(use_cookies=False).post(one_click, data=ONE_CLICK))
        holder.wait_for_waiters(2 * len(readers))
    writers.join()

    assert [store.get(reader.id).status for reader in readers] == ["complained"] * 4  # type: ignore[union-attr]
    # Nothing was recorded after the complaint: the later reports changed no row.
    assert [status_events(site, reader) for reader in readers] == [["complained"]] * 4


@concurrent
def test_reports_racing_on_the_same_readers_end_at_the_strongest_of_them(
    app: Flask,
    site: Services,
    post_events: Callable[..., int],
    mailbox_config: Config,
    tmp_path: Path,
) -> None:
    """Many writers at once, no order imposed: whatever order the database picks, each
    reader ends at the strongest status reported for them, and no writer fails."""
    store = site.store
    readers = [store.add(f"reader{n}@example.org", source="test") for n in range(120)]
    complained, bounced, unsubscribed = readers[0::3], readers[1::3], readers[2::3]
    for reader in readers[:80]:  # the first two thirds of the readers also bounce by mail
        hard_bounce_in_the_mailbox(mailbox_config, reader)
    imported = tmp_path / "old-platform.csv"
    imported.write_text(
        "email,status\n" + "".join(f"{r.email},unsubscribed\n" for r in readers),
        encoding="utf-8",
    )
    writers = Writers()
    start = threading.Barrier(5)

    def together(work: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            start.wait(timeout=30)
            return work()

        return run

    writers.start(
        together(lambda: post_events([sendgrid_event("spamreport", r) for r in complained]))
    )
    writers.start(
        together(
            lambda: post_events(
                [sendgrid_event("bounce", r, type="bounce", reason="550") for r in bounced]
            )
        )
    )
    writers.start(together(lambda: process_mailbox(mailbox_config)))
    writers.start(together(lambda: import_csv(store, imported)))
    writers.start(
        together(
            lambda: [
                app.test_client(use_cookies=False).post(
                    f"/u/{site.signer.unsubscribe_token(r.id, None, r.link_key)}", data=ONE_CLICK
                )
                for r in unsubscribed
            ]
        )
    )
    writers.join()

    expected = {
        reader.id: "complained"
        if reader in complained
        else "bounced"
        if reader in bounced or reader in readers[:80]
        else "unsubscribed"
        for reader in readers
    }
    assert {reader.id: store.get(reader.id).status for reader in readers} == expected  # type: ignore[union-attr]
