"""A signup confirmed through the web app gets the welcome mail once (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskClient

from newsletter.automations.steps import run_due_steps
from newsletter.config import Config, load_config
from newsletter.web.context import Services
from tests.automations.conftest import STEP
from tests.web.conftest import Outbox, csrf_of, link_in
from tests.web.test_signup import sign_up


@pytest.fixture
def config(project: Path) -> Config:
    """The example project with a welcome sequence of one step, due right away."""
    folder = project / "automations/welcome"
    folder.mkdir(parents=True)
    (folder / "01-thanks.md").write_text(
        STEP.format(title="Thanks for joining", after="0 days", extra=""), encoding="utf-8"
    )
    path = project / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["automations"] = {"welcome": {"path": "automations/welcome"}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_config(path)


def test_a_confirmed_signup_gets_the_welcome_mail_once(
    client: FlaskClient, site: Services, outbox: Outbox
) -> None:
    sign_up(client)
    link = link_in(outbox.messages()[0], "/confirm/")
    assert run_due_steps(site.config) == []  # pending: not yet in any sequence

    client.post(link, data={"csrf_token": csrf_of(client.get(link))})
    run_due_steps(site.config)
    run_due_steps(site.config)

    subjects = [str(message["Subject"]) for message in outbox.messages()]
    assert subjects == ["Confirm your subscription to Breastfeeding World", "Thanks for joining"]
    welcome = outbox.messages()[1]
    assert welcome["To"].addresses[0].addr_spec == "grace@example.org"
    assert "/u/" in welcome["List-Unsubscribe"]
