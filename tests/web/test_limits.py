"""The signup limits (issue 10, item 7): a sliding window, one mailbox however it is
spelled, unconfirmed signups that expire, and erased addresses left in peace."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from newsletter.store.schema import subscribers
from newsletter.web.context import Services
from newsletter.web.limits import HOUR, RateLimiter
from tests.web.conftest import Outbox
from tests.web.test_signup import sign_up


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_no_burst_at_a_window_boundary(site: Services) -> None:
    clock = Clock(10 * HOUR - 1)  # one second before a fixed window would start afresh
    limiter = RateLimiter(site.store.engine, clock=clock)

    first = [limiter.allow("test", "key", limit=3) for _ in range(4)]
    clock.now += 2  # the next hour, by the wall clock
    after_the_boundary = limiter.allow("test", "key", limit=3)
    clock.now += HOUR + 60  # every earlier request has left the window
    an_hour_later = [limiter.allow("test", "key", limit=3) for _ in range(4)]

    assert first == [True, True, True, False]
    assert after_the_boundary is False
    assert an_hour_later == [True, True, True, False]


def test_refused_requests_do_not_count(site: Services) -> None:
    clock = Clock(50 * HOUR)
    limiter = RateLimiter(site.store.engine, clock=clock)
    assert limiter.allow("test", "key", limit=1)
    for _ in range(5):
        clock.now += 600
        assert not limiter.allow("test", "key", limit=1)

    clock.now += 600 + 60  # an hour (and a slot) after the one that was allowed
    assert limiter.allow("test", "key", limit=1)


def test_case_and_plus_tags_share_one_mailbox_limit(client: FlaskClient, outbox: Outbox) -> None:
    for address in (
        "grace@example.org",
        "Grace+news@example.org",
        "GRACE+1@EXAMPLE.ORG",
        "grace+2@example.org",
        "grace@Example.org",
    ):
        assert sign_up(client, email=address).status_code == 200

    assert len(outbox.messages()) == 3


def test_an_erased_address_gets_one_confirmation_a_day_whoever_asks(
    app: Flask, site: Services, outbox: Outbox
) -> None:
    site.store.add("gone@example.org", source="test")
    site.store.forget("gone@example.org")
    for n in range(3):
        sign_up(app.test_client(), email="gone@example.org", remote_addr=f"198.51.100.{n + 1}")

    assert len(outbox.messages()) == 1
    assert site.store.find("gone@example.org") is not None  # their own signup still counts


@pytest.mark.usefixtures("outbox")
def test_signups_never_confirmed_expire_with_their_data(
    client: FlaskClient, site: Services
) -> None:
    days = site.config.web.pending_signup_days
    old = site.store.add(
        "old@example.org", status="pending", source="signup-form", topics=["research"]
    )
    recent = site.store.add("recent@example.org", status="pending", source="signup-form")
    imported = site.store.add("imported@example.org", status="pending", source="import:a.csv")
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 1)
    with site.store.engine.begin() as connection:
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id.in_([old.id, imported.id]))
            .values(opt_in_at=long_ago)
        )

    sign_up(client, email="new@example.org")

    assert site.store.find("old@example.org") is None
    assert not site.store.is_suppressed("old@example.org")  # nothing of them is kept
    assert site.store.find("recent@example.org") == recent
    assert site.store.find("imported@example.org") == imported  # the editor's list: left alone
    assert site.store.find("new@example.org") is not None
