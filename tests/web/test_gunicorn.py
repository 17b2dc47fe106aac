"""The app as docs/deploy.md runs it: gunicorn, 4 workers of 4 threads, PostgreSQL, one
proxy hop.

One-click unsubscribes, preference changes, click redirects, signed webhook batches
(each posted twice, as SendGrid retries) and signups from one client all arrive at once
over HTTP on 127.0.0.1; once half of them are answered, one worker is killed (SIGKILL)
and gunicorn starts another. Whatever was answered took effect exactly once, what was
cut off took effect at most once, and the signup limit held across the workers.
"""

from __future__ import annotations

import base64
import http.client
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select, update

from newsletter.send.campaign_rows import start_campaign
from newsletter.store import Store, open_store_url
from newsletter.store.engagement import engagement_by_subscriber
from newsletter.store.scheduling import campaign_links
from newsletter.store.schema import (
    campaign_engagement,
    ledger,
    subscriber_events,
    subscribers,
    webhook_events,
)
from newsletter.tokens import Signer, TrackingSigner
from newsletter.web.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.conftest import skip_or_fail
from tests.store.databases import postgres_schema
from tests.web.conftest import SECRET, public_key_text
from tests.web.live import PORT_ATTEMPTS, PortTaken, free_port, make_project

# Four workers starting and a hundred requests: minutes on a loaded 2-core machine
# (under load 13, each of its processes gets a tenth of a core).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(900)]
# How long one request may take before it counts as cut off, and how long gunicorn may
# take to start its workers: generous, so that only a hang fails the test.
REQUEST_TIMEOUT = 120
START_TIMEOUT = 300

WORKERS = 4
SIGNUP_LIMIT = 10
CLIENT_IP = "203.0.113.9"
TOPICS = ("research", "stories", "events")
TARGETS = {1: "https://example.org/one", 2: "https://example.org/two?x=1&y=2"}
Answer = int | None  # the status, or None when the connection was cut before an answer


@dataclass
class Gunicorn:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        opener: urllib.request.OpenerDirector | None = None,
    ) -> tuple[Answer, dict[str, str], str]:
        request = urllib.request.Request(
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            try:
                with (opener or _opener()).open(request, timeout=REQUEST_TIMEOUT) as response:
                    return response.status, dict(response.headers), response.read().decode()
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, dict(error.headers), error.read().decode()
        except (ConnectionError, urllib.error.URLError, OSError, http.client.HTTPException):
            # No answer, or one cut off in its body (IncompleteRead: the kill came while
            # the worker was writing it): the client saw no whole answer.
            return None, {}, ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener(jar: http.cookiejar.CookieJar | None = None) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [_NoRedirect()]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_form(
    server: Gunicorn,
    path: str,
    form: dict[str, str],
    *,
    opener: urllib.request.OpenerDirector | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    body = urllib.parse.urlencode(form).encode()
    return server.request("POST", path, body=body, headers={**FORM, **(headers or {})},
                          opener=opener)[0]  # fmt: skip


def form_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@pytest.fixture
def gunicorn_installed() -> None:
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        skip_or_fail("gunicorn is not installed (pip install 'newsletter[deploy]')")


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with postgres_schema(postgres_url) as url:
        yield url


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    """The test's own connection to the database the workers share, closed however the
    test ends (a connection left to the garbage collector fails a later test)."""
    store = open_store_url(database, TOPICS)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def gunicorn(
    folder: Path, database: str, key: ec.EllipticCurvePrivateKey, *options: str
) -> Iterator[Gunicorn]:
    """gunicorn with :data:`WORKERS` workers over the example project, behind one proxy,
    on a free port (another, if a parallel run takes the one found first)."""
    project = make_project(folder / "project", "http://127.0.0.1")
    config = project / "newsletter.yaml"
    open_store_url(database, TOPICS).close()  # the schema, before the workers race for it
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))},
        "NEWSLETTER_CONFIG": str(config),
        "NEWSLETTER_DATABASE_URL": database,
        "NEWSLETTER_SECRET_KEY": SECRET,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public_key_text(key),
    }
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        settings["site_url"] = f"http://127.0.0.1:{port}"
        settings["web"] = {"proxy_hops": 1, "forms_per_client_per_hour": SIGNUP_LIMIT}
        settings["sendgrid"] = {"tracking": True}
        config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        log = folder / f"gunicorn-{attempt}.log"
        command = [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--threads", "4",
                   "--bind", f"127.0.0.1:{port}", *options, "newsletter.web.wsgi:app"]  # fmt: skip
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=project, env=environment, stdout=output, stderr=subprocess.STDOUT
            )
        server = Gunicorn(f"http://127.0.0.1:{port}", process, log)
        try:
            _wait_for_workers(server)
        except PortTaken:
            continue
        except BaseException:
            process.kill()
            process.wait(timeout=START_TIMEOUT)
            raise
        try:
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=START_TIMEOUT)
        return
    raise RuntimeError(f"no free port for gunicorn in {PORT_ATTEMPTS} attempts")


@pytest.fixture
def served(
    gunicorn_installed: None,
    database: str,
    tmp_path: Path,
    webhook_private_key: ec.EllipticCurvePrivateKey,
) -> Iterator[Gunicorn]:
    with gunicorn(tmp_path, database, webhook_private_key) as server:
        yield server


def _wait_for_workers(server: Gunicorn) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = server.log.read_text(errors="replace")
            if "Connection in use" in log:
                raise PortTaken(log)
            raise RuntimeError(f"gunicorn exited:\n{log}")
        booted = server.log.read_text(errors="replace").count("Booting worker")
        if booted >= WORKERS and server.request("GET", "/healthz")[0] == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not start:\n{server.log.read_text()}")


@dataclass
class Plan:
    """What is sent, and what each request got back."""

    unsubscribes: dict[int, str]  # subscriber id -> one-click path
    preferences: dict[int, str]  # subscriber id -> /p/ path
    clicks: list[int]  # link numbers, one per click
    batches: list[list[dict[str, Any]]]  # webhook event batches
    signups: list[str]  # addresses, all from one client
    answers: dict[tuple[str, Any], list[Answer]]
    held: int = 0  # the subscriber whose one-click POST was in the killed worker


def plan_for(store: Store, secret: str) -> Plan:
    readers = [
        store.add(f"reader{n}@example.org", topics=("research",), source="test") for n in range(60)
    ]
    campaign = start_campaign(
        store, slug="s", issue_path="i.md", subject="S", topics=(), provider="sendgrid"
    )
    with store.engine.begin() as connection:
        connection.execute(update(ledger).values(state="unknown"))  # awaiting events
        connection.execute(
            campaign_links.insert(),
            [{"campaign_id": campaign.id, "link": n, "url": url} for n, url in TARGETS.items()],
        )
    signer = Signer(secret)
    events = [
        {
            "email": reader.email,
            "timestamp": int(time.time()),
            "event": kind,
            "sg_event_id": f"{kind}-{reader.id}",
            "sg_message_id": f"message-{reader.id}.filter0001",
            "campaign_id": str(campaign.id),
            "subscriber_id": str(reader.id),
        }
        for reader in readers[40:]
        for kind in ("delivered", "open")
    ]
    return Plan(
        unsubscribes={
            r.id: f"/u/{signer.unsubscribe_token(r.id, campaign.id, r.link_key)}"
            for r in readers[:25]
        },
        preferences={
            r.id: f"/p/{signer.preferences_token(r.id, r.link_key)}" for r in readers[25:40]
        },
        clicks=[1, 2] * 20,
        batches=[events[n : n + 4] for n in range(0, len(events), 4)],
        signups=[f"signup{n}@example.org" for n in range(2 * SIGNUP_LIMIT)],
        answers={},
    )


def tasks(
    server: Gunicorn, plan: Plan, key: ec.EllipticCurvePrivateKey
) -> list[Callable[[], None]]:
    def one_click(subscriber: int, path: str) -> None:
        status = post_form(server, path, {"List-Unsubscribe": "One-Click"})
        plan.answers.setdefault(("unsubscribe", subscriber), []).append(status)

    def preferences(subscriber: int, path: str) -> None:
        opener = _opener(http.cookiejar.CookieJar())
        status, _, page = server.request("GET", path, opener=opener)
        if status == 200:
            form = {"action": "save", "name": "Changed", "topics": "stories",
                    "csrf_token": form_token(page)}  # fmt: skip
            status = post_form(server, path, form, opener=opener)
        plan.answers.setdefault(("preferences", subscriber), []).append(status)

    def click(number: int, link: int) -> None:
        token = TrackingSigner(SECRET).click_token(1, link)
        status, headers, _ = server.request("GET", f"/c/{token}")
        assert status is None or (status, headers.get("Location")) == (302, TARGETS[link])
        plan.answers.setdefault(("click", number), []).append(status)

    def webhook(number: int, events: list[dict[str, Any]]) -> None:
        body = json.dumps(events).encode()
        stamp = str(int(time.time()))
        signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                   SIGNATURE_HEADER: base64.b64encode(signature).decode()}  # fmt: skip
        status = server.request("POST", "/webhooks/sendgrid", body=body, headers=headers)[0]
        plan.answers.setdefault(("batch", number), []).append(status)

    def signup(address: str) -> None:
        opener = _opener(http.cookiejar.CookieJar())
        forwarded = {"X-Forwarded-For": CLIENT_IP}
        status, _, page = server.request("GET", "/subscribe", headers=forwarded, opener=opener)
        if status == 200:
            form = {"email": address, "name": "New", "topics": "research", "consent": "yes",
                    "csrf_token": form_token(page)}  # fmt: skip
            status = post_form(server, "/subscribe", form, opener=opener, headers=forwarded)
        plan.answers.setdefault(("signup", address), []).append(status)

    work: list[Callable[[], None]] = []
    work += [lambda s=s, p=p: one_click(s, p) for s, p in plan.unsubscribes.items()]
    work += [lambda s=s, p=p: preferences(s, p) for s, p in plan.preferences.items()]
    work += [lambda n=n, link=link: click(n, link) for n, link in enumerate(plan.clicks)]
    for number, batch in enumerate(plan.batches):  # each batch twice: SendGrid's retry
        work += [lambda n=number, b=batch: webhook(n, b)] * 2
    work += [lambda a=a: signup(a) for a in plan.signups]
    # Interleaved, so that every kind is in flight when the worker dies.
    return [work[i] for i in sorted(range(len(work)), key=lambda i: (i * 7919) % len(work))]


def worker_serving(server: Gunicorn, client_port: int) -> int:
    """The worker whose database connection leaves from ``client_port`` (Linux /proc)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                sockets.add(f"socket:[{fields[9]}]")
    for pid in server.workers():
        for descriptor in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(descriptor) in sockets:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no worker has a connection from port {client_port}")


@contextmanager
def held_one_click(
    server: Gunicorn, store: Store, plan: Plan, subscriber: int, path: str
) -> Iterator[int]:
    """A one-click POST that its worker is in the middle of (its UPDATE waits for a row
    lock the test holds); yields that worker's pid, releases the lock on leaving."""
    plan.held = subscriber
    with store.engine.connect() as lock:
        transaction = lock.begin()
        lock.execute(
            select(subscribers.c.id).where(subscribers.c.id == subscriber).with_for_update()
        )
        me = lock.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        thread = threading.Thread(
            target=lambda: plan.answers.setdefault(("unsubscribe", subscriber), []).append(
                post_form(server, path, {"List-Unsubscribe": "One-Click"})
            )
        )
        thread.start()
        port = _waiting_for(store, me)
        try:
            yield worker_serving(server, port)
        finally:
            transaction.rollback()
            thread.join(timeout=60)


def _waiting_for(store: Store, blocker: int) -> int:
    """The client port of the connection that waits for ``blocker``'s lock, once it does.

    Asked in a new transaction each time: PostgreSQL shows a transaction one snapshot
    of pg_stat_activity."""
    query = "SELECT client_port FROM pg_stat_activity WHERE %(me)s = ANY(pg_blocking_pids(pid))"
    deadline = time.monotonic() + REQUEST_TIMEOUT
    while time.monotonic() < deadline:
        with store.engine.connect() as connection:
            port = connection.exec_driver_sql(query, {"me": blocker}).scalar()
        if port is not None:
            return int(port)
        time.sleep(0.02)
    raise AssertionError("the one-click POST never reached the database")


def test_four_workers_apply_everything_once_through_a_killed_worker(
    served: Gunicorn, store: Store, webhook_private_key: ec.EllipticCurvePrivateKey
) -> None:
    plan = plan_for(store, SECRET)
    held = plan.unsubscribes.popitem()  # not in the crowd: the request the kill cuts off
    work = tasks(served, plan, webhook_private_key)
    halfway = threading.Event()
    done = Counter[str]()
    lock = threading.Lock()

    def run(task: Callable[[], None]) -> None:
        task()
        with lock:
            done["tasks"] += 1
            if done["tasks"] >= len(work) // 2:
                halfway.set()

    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(run, task) for task in work]
        assert halfway.wait(timeout=START_TIMEOUT)
        with held_one_click(served, store, plan, *held) as killed:
            os.kill(killed, signal.SIGKILL)  # in the middle of the held request
        for future in futures:
            future.result()
    # The clicks counted in the killed worker's memory (up to a second of them) are
    # lost with it; these, sent after, are all counted by the workers' graceful stop.
    later = [served.request("GET", f"/c/{TrackingSigner(SECRET).click_token(1, 1)}")[0]
             for _ in range(10)]  # fmt: skip
    served.process.send_signal(signal.SIGTERM)
    served.process.wait(timeout=START_TIMEOUT)

    answered = {key: statuses for key, statuses in plan.answers.items()
                if any(status is not None for status in statuses)}  # fmt: skip
    cut_off = set(plan.answers) - set(answered)
    assert ("unsubscribe", plan.held) in cut_off  # the client saw the connection close
    log = served.log.read_text(errors="replace")
    assert f"Worker (pid:{killed}) was sent SIGKILL" in log
    # The killed one was replaced (as is any that missed gunicorn's 30 s heartbeat on a
    # machine too loaded to run it: what it had answered still took effect once).
    assert log.count("Booting worker") == WORKERS + 1 + log.count("WORKER TIMEOUT"), log
    with store.engine.connect() as connection:
        events = Counter(
            (row.subscriber_id, row.event)
            for row in connection.execute(select(subscriber_events.c.subscriber_id,
                                                 subscriber_events.c.event))
        )  # fmt: skip
        opens = connection.scalar(
            select(campaign_engagement.c.count).where(campaign_engagement.c.event == "open")
        )
        readers_opened = connection.scalar(
            select(func.count()).select_from(engagement_by_subscriber)
        )
        seen = set(connection.scalars(select(webhook_events.c.event_id)))
        states = dict(connection.execute(select(ledger.c.subscriber_id, ledger.c.state)).all())
        clicks = connection.scalar(select(func.sum(campaign_links.c.clicks)))

    # One-click unsubscribes: answered -> applied once; cut off -> at most once.
    for subscriber in [*plan.unsubscribes, plan.held]:
        assert events[(subscriber, "unsubscribed")] <= 1
        if ("unsubscribe", subscriber) in answered:
            assert events[(subscriber, "unsubscribed")] == 1
            assert answered[("unsubscribe", subscriber)] == [200], log
            assert store.get(subscriber).status == "unsubscribed"  # type: ignore[union-attr]
    # Preference changes: answered -> saved, one event each.
    for subscriber in plan.preferences:
        assert events[(subscriber, "preferences")] <= 1
        if ("preferences", subscriber) in answered:
            assert events[(subscriber, "preferences")] == 1
            assert store.get(subscriber).topics == ("stories",)  # type: ignore[union-attr]
    # Webhook events: every event of an answered batch applied, none twice (each batch
    # came twice, and both copies raced on different workers).
    for number, batch in enumerate(plan.batches):
        if ("batch", number) in answered and 200 in answered[("batch", number)]:
            assert {event["sg_event_id"] for event in batch} <= seen
    applied_opens = {event_id for event_id in seen if event_id.startswith("open-")}
    assert opens == readers_opened == len(applied_opens)
    for event_id in seen:
        if event_id.startswith("delivered-"):
            assert states[int(event_id.split("-")[1])] == "sent"
    # The signup limit held across four (then five) processes.
    accepted = [a for a in plan.signups if 200 in plan.answers.get(("signup", a), [])]
    refused = [a for a in plan.signups if 429 in plan.answers.get(("signup", a), [])]
    assert len(accepted) <= SIGNUP_LIMIT
    assert len(refused) >= len(plan.signups) - SIGNUP_LIMIT - len(cut_off)
    signed_up = [a for a in plan.signups if store.find(a) is not None]
    assert len(signed_up) <= SIGNUP_LIMIT
    # Clicks: never counted twice; the ones after the kill all counted.
    answered_clicks = sum(1 for key in answered if key[0] == "click") + later.count(302)
    assert later.count(302) == 10
    assert later.count(302) <= clicks <= answered_clicks


def test_a_worker_that_stops_gracefully_writes_its_click_counts_first(
    gunicorn_installed: None,
    database: str,
    store: Store,
    tmp_path: Path,
    webhook_private_key: ec.EllipticCurvePrivateKey,
) -> None:
    # --max-requests 1: each worker stops right after one request, well before its
    # once-a-second flush; the counts are written on the way out, not lost.
    with gunicorn(tmp_path, database, webhook_private_key, "--max-requests", "1") as server:
        start_campaign(store, slug="s", issue_path="i.md", subject="S", topics=(), provider="smtp")
        with store.engine.begin() as connection:
            connection.execute(
                campaign_links.insert().values(campaign_id=1, link=1, url=TARGETS[1])
            )
        token = TrackingSigner(SECRET).click_token(1, 1)
        answers = [server.request("GET", f"/c/{token}")[0] for _ in range(6)]
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=START_TIMEOUT)

    assert answers == [302] * 6
    with store.engine.connect() as connection:
        assert connection.scalar(select(campaign_links.c.clicks)) == 6
