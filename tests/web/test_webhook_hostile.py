"""Signed bodies the webhook cannot use are refused or ignored, never a 500; and no
error log holds a reader's link token (issue 10, item 9)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy.engine import make_url

from newsletter.config import Config
from newsletter.models import Subscriber
from newsletter.tokens import Signer
from newsletter.web.context import Services
from tests.web.conftest import SECRET, Webhook


def test_json_nested_past_the_parsers_depth_is_a_400(webhook: Webhook) -> None:
    body = b"[" * 100_000 + b"]" * 100_000

    assert webhook(body).status_code == 400
    inside = b'[{"event": "open", "reason": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
    assert webhook(inside).status_code == 400


@pytest.mark.parametrize(
    "bad",
    [
        {"campaign_id": 10**30},
        {"subscriber_id": "9" * 40},
        {"campaign_id": -5, "subscriber_id": 2**63},
        {"sg_event_id": "evil\x00id", "reason": "nul\x00byte"},
        {"sg_event_id": ["not", "a", "string"], "email": {"no": "string"}},
    ],
)
def test_values_out_of_range_are_ignored_and_the_rest_applied(
    webhook: Webhook, site: Services, subscriber: Subscriber, bad: dict[str, object]
) -> None:
    events = [
        {"event": "delivered", "email": subscriber.email, "sg_event_id": "x1", **bad},
        {"event": "unsubscribe", "email": subscriber.email, "sg_event_id": "good-1"},
    ]

    response = webhook(json.dumps(events).encode())

    assert response.status_code == 200
    current = site.store.get(subscriber.id)
    assert current is not None and current.status == "unsubscribed"


def test_an_error_log_never_holds_the_token_of_the_path(
    web_config: Config,
    make_app: Callable[..., Flask],
    database_url: str,
    subscriber: Subscriber,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = Signer(SECRET).unsubscribe_token(subscriber.id, None)
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        unwritable = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:
        url = make_url(database_url)
        options = f"{url.query['options']} -cdefault_transaction_read_only=on"
        unwritable = url.update_query_dict({"options": options}).render_as_string(
            hide_password=False
        )
    read_only = web_config.model_copy(update={"database_url": unwritable})
    client = make_app(read_only).test_client()

    with caplog.at_level(logging.INFO):
        response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})

    assert response.status_code == 500
    assert caplog.records, "the failure was not logged"
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    assert token not in logged
    assert token[:20] not in logged
