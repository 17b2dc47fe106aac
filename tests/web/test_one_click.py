"""Group commit of one-click unsubscribes: ``Store.unsubscribe_many`` and its writer thread."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from newsletter.web.context import Services
from newsletter.web.one_click import OneClickWriter

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def test_unsubscribe_many_changes_only_pending_and_active_subscribers(site: Services) -> None:
    store = site.store
    active = store.add("active@example.org", source="test")
    pending = store.add("pending@example.org", status="pending", source="test")
    gone = store.add("gone@example.org", source="test")
    store.unsubscribe(gone.id, source="test")
    bounced = store.add("bounced@example.org", source="test")
    store.mark(bounced.id, "bounced")

    changed = store.unsubscribe_many(
        [
            (active.id, 4, active.link_key),
            (pending.id, None, pending.link_key),
            (gone.id, 4, gone.link_key),
            (bounced.id, 4, bounced.link_key),
            (999, 4, "x"),
            (active.id, 5, active.link_key),
        ],
        source="one-click",
    )

    assert changed == {active.id, pending.id}
    record = store.describe("active@example.org")
    assert (record["status"], record["unsubscribe_source"]) == ("unsubscribed", "one-click")
    assert record["unsubscribe_campaign_id"] == 4  # a double click: the first one counts
    assert [e["event"] for e in record["events"]] == ["unsubscribed"]
    assert record["events"][0]["detail"] == {"campaign_id": 4}
    assert store.describe("pending@example.org")["status"] == "unsubscribed"
    assert store.describe("bounced@example.org")["status"] == "bounced"
    assert store.describe("gone@example.org")["unsubscribe_source"] == "test"


def test_the_writer_answers_each_request_after_its_commit(site: Services) -> None:
    reader = site.store.add("reader@example.org", source="test")
    writer = OneClickWriter(site.store)
    try:
        first = writer.unsubscribe(reader.id, 9, reader.link_key)
        again = writer.unsubscribe(reader.id, 9, reader.link_key)
    finally:
        writer.close()

    assert (first, again) == (True, False)
    assert site.store.describe("reader@example.org")["status"] == "unsubscribed"


def test_a_failed_write_fails_the_request_and_not_the_writer(
    scanner: FlaskClient, site: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = site.store.add("reader@example.org", source="test")
    path = f"/u/{site.signer.unsubscribe_token(reader.id, None, reader.link_key)}"
    real = site.store.unsubscribe_many

    def broken(*_: object, **__: object) -> set[int]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(site.store, "unsubscribe_many", broken)
    failed = scanner.post(path, data=ONE_CLICK)
    monkeypatch.setattr(site.store, "unsubscribe_many", real)
    retried = scanner.post(path, data=ONE_CLICK)

    assert failed.status_code == 500
    assert "disk full" not in failed.get_data(as_text=True)
    assert retried.status_code == 200
    assert site.store.describe("reader@example.org")["status"] == "unsubscribed"
