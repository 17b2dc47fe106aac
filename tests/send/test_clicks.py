"""First-party click tracking, from the sent message to the report: links through
``/c/<token>``, counted by the web app, redirected with 302, shown by ``report``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store
from newsletter.tokens import Signer
from newsletter.web import create_app, shutdown
from tests.send.conftest import SEED
from tests.send.test_send_cli import outbox_messages

SITE = "https://news.breastfeedingworld.example"
CTA = "https://www.instagram.com/explore/tags/breastfeedingworld/"


def test_tracked_links_count_clicks_and_redirect_to_the_original(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    config = configure(tracking={"clicks": True})
    ids = subscribers(2)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    message = outbox_messages(project)[0]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert CTA not in html and CTA not in text  # the original is nowhere in the mail
    tracked = re.findall(rf'href="({re.escape(SITE)}/c/[^"]+)"', html)
    assert tracked, "no tracked link in the HTML part"
    assert set(re.findall(rf"{re.escape(SITE)}/c/\S+", text)) <= set(tracked)
    assert re.search(rf"{re.escape(SITE)}/u/", html)  # the unsubscribe link is untouched

    app = create_app(config, {"TESTING": True})
    client = app.test_client(use_cookies=False)
    try:
        paths = [url.removeprefix(SITE) for url in tracked]
        targets = {path: client.get(path).headers["Location"] for path in paths}
        [cta_path] = [path for path, target in targets.items() if target == CTA]
        answer = client.get(cta_path)  # a second click on the same link
        assert answer.status_code == 302
        assert answer.headers["Location"] == CTA
        assert client.get(cta_path[:-3] + "abc").status_code == 404  # tampered
        assert client.get("/c/not-a-token").status_code == 404
    finally:
        shutdown(app)  # writes the counts

    assert [store.get(i).status for i in ids] == ["active", "active"]  # type: ignore[union-attr]
    data = json.loads(runner.invoke(cli, ["report", SEED, "--format", "json"]).output)
    [issue] = data["issues"]
    assert issue["top_links"][0] == {"url": CTA, "clicks": 2}
    assert issue["clicks"] == len(paths) + 1  # each link once, the CTA twice
    table = runner.invoke(cli, ["report", SEED]).output
    assert f"       2  {CTA}" in table


def test_without_tracking_links_go_straight_to_their_target(
    runner: CliRunner, project: Path, subscribers: Callable[..., list[int]]
) -> None:
    subscribers(1)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0

    html = outbox_messages(project)[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert CTA in html
    assert f"{SITE}/c/" not in html
