"""The fake SendGrid refuses what the real API refuses, so passing tests mean something."""

from __future__ import annotations

import json
from typing import Any

import pytest
from python_http_client.exceptions import BadRequestsError, UnauthorizedError
from sendgrid import SendGridAPIClient

from tests.fakes.sendgrid import API_KEY, FakeSendGrid


def body(personalizations: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "from": {"email": "letters@example.org"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Hi"}, {"type": "text/html", "value": "<p>Hi"}],
        "personalizations": personalizations or [{"to": [{"email": "a@example.org"}]}],
        **extra,
    }


def to(n: int) -> dict[str, Any]:
    return {"to": [{"email": f"r{n}@example.org"}]}


def refusal(sendgrid: FakeSendGrid, payload: dict[str, Any]) -> list[dict[str, Any]]:
    client = SendGridAPIClient(API_KEY, host=sendgrid.url)
    with pytest.raises(BadRequestsError) as raised:
        client.send(payload)
    errors: list[dict[str, Any]] = json.loads(raised.value.body)["errors"]
    return errors


def test_a_valid_request_is_accepted_with_a_message_id(sendgrid: FakeSendGrid) -> None:
    response = SendGridAPIClient(API_KEY, host=sendgrid.url).send(body([to(1), to(2)]))

    assert response.status_code == 202
    assert response.headers["X-Message-Id"]
    assert sendgrid.received_by() == {"r1@example.org": 1, "r2@example.org": 1}


def test_more_than_1000_personalizations_are_refused(sendgrid: FakeSendGrid) -> None:
    errors = refusal(sendgrid, body([to(n) for n in range(1001)]))

    assert {"field": "personalizations", "help": None,
            "message": "You may not have more than 1000 personalizations per API request."
            } in errors  # fmt: skip


def test_more_than_1000_recipients_in_all_are_refused(sendgrid: FakeSendGrid) -> None:
    crowded = {"to": [{"email": "a@example.org"}], "cc": [to(n)["to"][0] for n in range(1000)]}

    errors = refusal(sendgrid, body([crowded]))

    assert errors[0]["message"].startswith("The total number of recipients must be no more")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (
            body([{**to(1), "custom_args": {"blob": "x" * 10_000}}]),
            "personalizations.0.custom_args",
        ),
        (body(subject=""), "subject"),
        (body(content=[]), "content"),
        (body(**{"from": {}}), "from.email"),
        (body(headers={"Subject": "sneaky"}), "headers"),
        (body(categories=[f"c{n}" for n in range(11)]), "categories"),
        (body([{"to": []}]), "personalizations.0.to"),
    ],
)
def test_documented_limits_are_enforced(
    sendgrid: FakeSendGrid, payload: dict[str, Any], field: str
) -> None:
    assert [error["field"] for error in refusal(sendgrid, payload)] == [field]


def test_a_wrong_api_key_is_a_401(sendgrid: FakeSendGrid) -> None:
    with pytest.raises(UnauthorizedError):
        SendGridAPIClient("SG.wrong", host=sendgrid.url).send(body())
    assert sendgrid.received_by() == {}
