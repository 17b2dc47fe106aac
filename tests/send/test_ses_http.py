"""SES requests are signed as botocore signs them: SES refuses any other signature."""

from __future__ import annotations

import datetime

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from newsletter.send.providers.ses_http import RequestSigner

MOMENT = datetime.datetime(2026, 12, 7, 15, 59, 3, tzinfo=datetime.UTC)
BODY = b'{"FromEmailAddress":"News <news@example.org>","BulkEmailEntries":[]}'


def botocores_headers(
    url: str,
    credentials: Credentials,
    monkeypatch: pytest.MonkeyPatch,
    moment: datetime.datetime = MOMENT,
) -> dict[str, str]:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    request = AWSRequest(
        method="POST", url=url, data=BODY, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(credentials, "ses", "eu-west-1").add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzE  token/with+odd=chars"])
@pytest.mark.parametrize(
    "url",
    [
        "https://email.eu-west-1.amazonaws.com/v2/email/outbound-bulk-emails",
        "http://127.0.0.1:4579/v2/email/outbound-bulk-emails",
    ],
)
def test_the_signature_is_botocores(
    url: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    expected = botocores_headers(url, credentials, monkeypatch)

    ours = RequestSigner(url, region="eu-west-1", service="ses").headers(
        BODY, credentials.get_frozen_credentials(), MOMENT
    )

    assert ours == expected
    assert ("X-Amz-Security-Token" in ours) == (token is not None)


def test_a_new_day_or_secret_signs_with_a_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://127.0.0.1:4579/v2/email/outbound-bulk-emails"
    signer = RequestSigner(url, region="eu-west-1", service="ses")
    first = Credentials("AKIDEXAMPLE", "secret-one")
    signer.headers(BODY, first.get_frozen_credentials(), MOMENT)  # the key is kept

    rotated = Credentials("AKIDEXAMPLE", "secret-two")
    signed = signer.headers(BODY, rotated.get_frozen_credentials(), MOMENT)
    assert signed == botocores_headers(url, rotated, monkeypatch)

    tomorrow = MOMENT + datetime.timedelta(days=1)
    signed = signer.headers(BODY, rotated.get_frozen_credentials(), tomorrow)
    assert signed == botocores_headers(url, rotated, monkeypatch, tomorrow)
