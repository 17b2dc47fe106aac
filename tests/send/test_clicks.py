"""First-party click tracking, from the sent message to the report: links through
``/c/<token>``, counted by the web app, redirected with 302, shown by ``report``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.store import Store
from newsletter.tokens import Signer
from newsletter.web import create_app, shutdown
from tests.send.conftest import SEED
from tests.send.test_send_cli import body_of, outbox_messages

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
    html = body_of(message, "html")
    text = body_of(message, "plain")
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

    html = body_of(outbox_messages(project)[0], "html")
    assert CTA in html
    assert f"{SITE}/c/" not in html


def test_per_subscriber_tracking_knows_which_reader_clicked(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    config = configure(tracking={"clicks": True, "per_subscriber": True})
    subscribers(3)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    messages = outbox_messages(project)
    first_links = []
    for message in messages:
        html = body_of(message, "html")
        text = body_of(message, "plain")
        links = re.findall(rf'href="{re.escape(SITE)}(/c/[^"/]+/[^"]+)"', html)
        assert links, "no per-reader tracked link"
        in_text = re.findall(rf"{re.escape(SITE)}(/c/\S+)", text)
        assert in_text and set(in_text) <= set(links)  # the text part: the reader's links too
        assert "[[" not in html and "[[" not in text
        first_links.append(links[0])
    assert len(set(first_links)) == 3  # one link, three readers, three URLs

    app = create_app(config, {"TESTING": True})
    client = app.test_client(use_cookies=False)
    try:
        for path in (first_links[0], first_links[0], first_links[1]):
            assert client.get(path).status_code == 302
        # A reader's key moved onto another campaign's link, or altered: refused.
        token, key = first_links[0].removeprefix("/c/").split("/")
        assert client.get(f"/c/{token}/{key[:-2]}xx").status_code == 404
    finally:
        shutdown(app)

    issue = the_report(runner)
    assert issue["clicks"] == 3
    assert issue["unique_clicks"] == 2


def test_a_click_by_an_erased_reader_counts_without_losing_the_others(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    config = configure(tracking={"clicks": True, "per_subscriber": True})
    subscribers(2)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    links = []
    for message in outbox_messages(project):
        html = body_of(message, "html")
        links.append(re.findall(rf'href="{re.escape(SITE)}(/c/[^"/]+/[^"]+)"', html)[0])
    store.forget("reader0@example.org")

    follow(config, links)  # one erased reader's old link, one current reader's

    issue = the_report(runner)
    assert issue["clicks"] == 2
    assert issue["unique_clicks"] == 1


def test_the_open_pixel_is_there_only_with_tracking_opens_and_counts_per_campaign(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    secret: Signer,
) -> None:
    config = configure(tracking={"opens": True})
    subscribers(1)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    html = body_of(outbox_messages(project)[0], "html")
    [pixel] = re.findall(
        rf'<img src="{re.escape(SITE)}(/o/[^"]+)" width="1" height="1" alt=""', html
    )
    assert CTA in html  # clicks are not tracked unless asked for

    app = create_app(config, {"TESTING": True})
    try:
        answer = app.test_client().get(pixel)
        assert (answer.status_code, answer.mimetype) == (200, "image/gif")
        assert app.test_client().get(pixel[:-2] + "zz").status_code == 404
    finally:
        shutdown(app)

    issue = the_report(runner)
    assert issue["opens"] == 1
    # Not per reader: the report says it cannot tell, rather than show a wrong number.
    assert (issue["unique_opens"], issue["unique_clicks"]) == (None, None)
    assert issue["unique_note"] == "n/a (tracking.per_subscriber is off)"
    table = runner.invoke(cli, ["report", SEED]).output.splitlines()
    assert table[1].split()[-4:] == ["1", "(n/a)", "0", "(n/a)"]  # opens, then clicks
    assert "  readers who opened, who clicked: n/a (tracking.per_subscriber is off)" in table
    [row] = runner.invoke(cli, ["report", "--format", "csv"]).output.splitlines()[1:]
    assert ",1,0,n/a,n/a," in row


def test_with_per_subscriber_the_pixel_counts_each_reader_once(
    configure: Callable[..., Config],
    runner: CliRunner,
    project: Path,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: Signer,
) -> None:
    config = configure(tracking={"opens": True, "per_subscriber": True})
    subscribers(3)
    assert runner.invoke(cli, ["send", SEED, "--yes"]).exit_code == 0
    pixels, readers = [], []
    for message in outbox_messages(project):
        html = body_of(message, "html")
        pixels += re.findall(rf'<img src="{re.escape(SITE)}(/o/[^"/]+/[^"]+)" width="1"', html)
        readers.append(message["To"].addresses[0].addr_spec)
    assert len(set(pixels)) == 3  # one pixel per reader, each with the reader's key

    app = create_app(config, {"TESTING": True})
    client = app.test_client(use_cookies=False)
    try:
        for pixel in (pixels[0], pixels[0], pixels[0], pixels[1]):
            assert client.get(pixel).status_code == 200
        assert client.get(pixels[2][:-2] + "zz").status_code == 404  # a tampered key
    finally:
        shutdown(app)

    issue = the_report(runner)
    assert (issue["opens"], issue["unique_opens"], issue["unique_note"]) == (4, 2, "")
    table = runner.invoke(cli, ["report", SEED]).output
    assert "  opens 4 (2 readers), clicks 0 (0 readers)" in table

    store.forget(readers[0])  # the reader who opened three times
    issue = the_report(runner)
    assert issue["unique_opens"] == 1  # erased with the reader


def follow(config: Config, paths: list[str]) -> None:
    """GET each tracked link in a fresh web app (each must redirect), then shut it down,
    which writes the counts."""
    app = create_app(config, {"TESTING": True})
    client = app.test_client(use_cookies=False)
    try:
        for path in paths:
            assert client.get(path).status_code == 302
    finally:
        shutdown(app)


def the_report(runner: CliRunner) -> dict[str, Any]:
    """The one issue of `newsletter report --format json`."""
    [issue] = json.loads(runner.invoke(cli, ["report", "--format", "json"]).output)["issues"]
    return dict(issue)
