"""``/healthz`` tells a load balancer whether the app can do its work (issue 11, item 7)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy.engine import make_url

from newsletter.config import Config


def test_healthz_is_unhealthy_when_the_database_cannot_be_written(
    web_config: Config, make_app: Callable[..., Flask], database_url: str
) -> None:
    assert make_app(web_config).test_client().get("/healthz").status_code == 200
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    else:  # a standby, or a database switched to read-only
        url = make_url(database_url)
        options = f"{url.query['options']} -cdefault_transaction_read_only=on"
        read_only = url.update_query_dict({"options": options}).render_as_string(
            hide_password=False
        )
    client = make_app(web_config.model_copy(update={"database_url": read_only})).test_client()

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json == {"status": "database unavailable"}
