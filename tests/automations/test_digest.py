"""RSS-to-email digests: a feed served on 127.0.0.1, time moved through ``clock``."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.automations.digest import run_due_digests
from newsletter.automations.digest_state import find_state
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.send.schedule_queue import list_schedule
from newsletter.store import Store
from tests.automations.conftest import clock_at
from tests.send.test_send_cli import outbox_messages

pytestmark = pytest.mark.usefixtures("on_both")

MONDAY = dt.datetime(2030, 3, 4, 10, 0, tzinfo=dt.UTC)  # the digest is due daily at 9:00
DAY = dt.timedelta(days=1)


def rss(*posts: tuple[str, dt.datetime]) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://blog.example.org/{n}/</link>"
        f"<guid>https://blog.example.org/{n}/</guid>"
        f"<pubDate>{when:%a, %d %b %Y %H:%M:%S} +0000</pubDate>"
        f"<description>What {title} is about, in a few plain words.</description></item>"
        for n, (title, when) in enumerate(posts)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>The Milk Blog</title>'
        f"<link>https://blog.example.org/</link><description>Posts</description>{items}"
        "</channel></rss>"
    ).encode()


@dataclass
class FeedServer:
    url: str
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml"
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    served = FeedServer("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            self.send_response(served.status)
            self.send_header("Content-Type", served.content_type)
            self.send_header("Content-Length", str(len(served.body)))
            self.end_headers()
            self.wfile.write(served.body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


@pytest.fixture
def digest(
    configure: Callable[..., Config], feed_server: FeedServer, secret: object
) -> Callable[..., Config]:
    def set_up(**settings: object) -> Config:
        wanted = {"feed": feed_server.url, "every": "daily 9:00", **settings}
        return configure(automations={"digest": wanted})

    return set_up


def messages(project: Path) -> list[str]:
    if not (project / "outbox").exists():
        return []
    return sorted(
        f"{m['To'].addresses[0].addr_spec}: {m['Subject']}" for m in outbox_messages(project)
    )


OLD = ("Before the digest existed", MONDAY - 3 * DAY)


def test_new_posts_become_an_issue_held_for_the_editor(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    config = digest()
    subscribers(2)
    feed_server.body = rss(OLD)
    assert run_due_digests(config, clock=clock_at(MONDAY)) == []  # first sight
    quiet = run_due_digests(config, clock=clock_at(MONDAY + DAY))
    feed_server.body = rss(("Milk banks", MONDAY + DAY + DAY / 2), OLD)
    made = run_due_digests(config, clock=clock_at(MONDAY + 2 * DAY))
    again = run_due_digests(config, clock=clock_at(MONDAY + 2 * DAY + DAY / 4))

    assert [r.outcome for r in quiet] == ["nothing"]
    assert [r.outcome for r in made] == ["waiting"]
    assert again == []
    issue = project / "issues/2030-03-06-digest-2030-03-06.md"
    text = issue.read_text(encoding="utf-8")
    assert "## Milk banks" in text and "Before the digest existed" not in text
    [held] = [entry for entry in list_schedule(config) if entry.slug == "digest-2030-03-06"]
    assert held.state == "held"
    assert held.note is not None and "newsletter send issues/2030-03-06-digest" in held.note
    assert messages(project) == []  # nothing goes out before the editor says so


def test_a_held_digest_is_listed_with_the_readers_of_its_topics(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    runner: CliRunner,
) -> None:
    config = digest(topics=["research"])
    subscribers(2)
    subscribers(3, topics=("events",), start=2)
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY))  # first sight
    feed_server.body = rss(("Milk banks", MONDAY + DAY / 2), OLD)
    [made] = run_due_digests(config, clock=clock_at(MONDAY + DAY))
    assert made.outcome == "waiting"

    listed = runner.invoke(cli, ["schedule"])

    assert listed.exit_code == 0, listed.output
    row = listed.output.splitlines()[1]
    # As send would plan it: the two readers of research, not the list's five.
    assert row.split()[0] == "digest-2030-03-05"
    assert row.split()[-3:] == ["2", "outbox", "held"]


def test_without_approval_the_digest_is_sent_once_and_no_posts_means_no_mail(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    config = digest(approve=False)
    subscribers(2)
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY))
    feed_server.body = rss(("Milk banks", MONDAY + DAY / 2), OLD)

    sent = run_due_digests(config, clock=clock_at(MONDAY + DAY))
    nothing = run_due_digests(config, clock=clock_at(MONDAY + 2 * DAY))

    assert [r.outcome for r in sent] == ["sent"]
    assert [r.outcome for r in nothing] == ["nothing"]
    assert messages(project) == [
        "reader0@example.org: The latest from The Milk Blog",
        "reader1@example.org: The latest from The Milk Blog",
    ]


def test_a_failing_feed_keeps_its_state_and_the_next_run_tries_again(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    store: Store,
    project: Path,
) -> None:
    config = digest(approve=False)
    subscribers(1)
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY))
    before = find_state(store, "digest")
    feed_server.status = 503

    failed = run_due_digests(config, clock=clock_at(MONDAY + DAY))
    feed_server.status, feed_server.content_type = 200, "text/html"
    feed_server.body = b"<!doctype html><html><head><title>Blog</title></head><body></body></html>"
    not_a_feed = run_due_digests(config, clock=clock_at(MONDAY + DAY + DAY / 24))
    after = find_state(store, "digest")
    feed_server.content_type = "application/rss+xml"
    feed_server.body = rss(("Milk banks", MONDAY + DAY / 2), OLD)
    recovered = run_due_digests(config, clock=clock_at(MONDAY + DAY + DAY / 12))

    assert [r.outcome for r in failed] == ["failed"]
    assert failed[0].message == (
        f"digest: {feed_server.url}: the server answered 503 Service Unavailable "
        "(automations.digest.feed); nothing sent, the feed's state is kept and the next "
        "run-due tries again"
    )
    assert "this is a web page, not an RSS or Atom feed" in not_a_feed[0].message
    assert before is not None and after is not None
    assert (after.last_slot, after.seen) == (before.last_slot, before.seen)
    assert [r.outcome for r in recovered] == ["sent"]
    assert messages(project) == ["reader0@example.org: The latest from The Milk Blog"]


def test_fewer_posts_than_min_items_wait_for_the_next_moment(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    config = digest(approve=False, min_items=2)
    subscribers(1)
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY))
    feed_server.body = rss(("Milk banks", MONDAY + DAY / 2), OLD)
    waiting = run_due_digests(config, clock=clock_at(MONDAY + DAY))
    feed_server.body = rss(
        ("Night feeds", MONDAY + DAY + DAY / 2), ("Milk banks", MONDAY + DAY / 2), OLD
    )

    sent = run_due_digests(config, clock=clock_at(MONDAY + 2 * DAY))

    assert waiting[0].message == (
        "digest: 1 new post(s) since the last digest (min_items: 2): no mail this time"
    )
    assert [r.outcome for r in sent] == ["sent"]
    text = (project / "issues/2030-03-06-digest-2030-03-06.md").read_text(encoding="utf-8")
    assert text.index("## Night feeds") < text.index("## Milk banks")


def test_automations_shows_when_the_digest_is_next_due_and_why_it_failed(
    digest: Callable[..., Config], feed_server: FeedServer, runner: CliRunner
) -> None:
    config = digest(every="monday 9:00")
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY - 2 * DAY))  # first sight, a Saturday
    feed_server.status = 500
    run_due_digests(config, clock=clock_at(MONDAY))

    result = runner.invoke(cli, ["automations"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        f"digest (digest of {feed_server.url}, monday 9:00, held for approval): next "
    )
    assert lines[0].endswith("; last digest: none yet")
    assert lines[1] == (
        f"  the last try failed: {feed_server.url}: the server answered 500 Internal Server Error"
    )


def test_a_digest_and_a_sequence_are_told_apart_in_the_config(
    configure: Callable[..., Config],
) -> None:
    with pytest.raises(ConfigError) as raised:
        configure(
            automations={
                "both": {"path": "automations/x", "feed": "https://example.org/f"},
                "weekly": {"feed": "https://example.org/f", "every": "weekly"},
                "misplaced": {"path": "automations/x", "approve": False},
            }
        )

    assert sorted(str(raised.value).splitlines()) == [
        "newsletter.yaml: automations.both: give either path (a sequence's folder of steps) "
        "or feed (a digest's RSS or Atom feed), not both or neither",
        "newsletter.yaml: automations.misplaced: approve: only for a digest (feed:), not a "
        "sequence",
        "newsletter.yaml: automations.weekly: every: cannot read 'weekly'; write a weekday "
        "or 'daily' and a time, e.g. 'monday 9:00'",
    ]


def test_ctrl_c_during_a_digest_leaves_its_moment_to_the_next_run_which_sends_it(
    digest: Callable[..., Config],
    feed_server: FeedServer,
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    config = digest(approve=False)
    subscribers(2)
    feed_server.body = rss(OLD)
    run_due_digests(config, clock=clock_at(MONDAY))
    feed_server.body = rss(("Milk banks", MONDAY + DAY / 2), OLD)
    stopping = threading.Event()
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if ": sending " in line:
            stopping.set()  # Ctrl-C as the digest's campaign starts

    stopped = run_due_digests(config, clock=clock_at(MONDAY + DAY), say=say, stopping=stopping)
    assert [r.outcome for r in stopped] == ["interrupted"]
    assert lines[-1] == (
        "digest: issues/2030-03-05-digest-2030-03-05.md: stopped (interrupted (Ctrl-C)); "
        "the next run-due resumes it"
    )
    assert messages(project) == []

    resumed = run_due_digests(config, clock=clock_at(MONDAY + DAY + DAY / 24))
    assert [r.outcome for r in resumed] == ["sent"]
    assert messages(project) == [
        "reader0@example.org: The latest from The Milk Blog",
        "reader1@example.org: The latest from The Milk Blog",
    ]
    assert run_due_digests(config, clock=clock_at(MONDAY + DAY + DAY / 12)) == []
