"""Every wait comes before the hand-over (issue 20, item 1).

A real ``newsletter send`` runs as a subprocess with a rate so low that the next batch
(SendGrid, Postmark) or message (SMTP, the outbox) waits for seconds, on SQLite and
PostgreSQL.
The sender announces each long wait on stderr ("waiting ... s"): the tests act on that
line, never on a guess of how long anything takes. While it waits, nobody it waits for
may be ``in_flight``: a kill -9 or a Ctrl-C leaves them ``pending`` (and a later send
mails each reader exactly once), and a reader who unsubscribes meanwhile is not mailed.
The same holds for the hours-long wait of a full ``sending.per_hour`` or ``per_day``
cap, and for the back-off before a retry (SendGrid, Postmark, Mailgun, SMTP).
"""

from __future__ import annotations

import email
import email.policy
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.store import Store
from newsletter.store.schema import ledger as ledger_rows
from tests.fakes.mailgun import API_KEY as MAILGUN_KEY
from tests.fakes.mailgun import DOMAIN as MAILGUN_DOMAIN
from tests.fakes.mailgun import FakeMailgun
from tests.fakes.postmark import SERVER_TOKEN, FakePostmark
from tests.send.conftest import SEED

pytestmark = pytest.mark.slow


@dataclass
class Mailer:
    """A provider wired to its local server, with a pace that makes it wait."""

    name: str
    readers: int
    batch: int  # recipients handed over at once: SendGrid's batch, one message else
    long_rate: str  # --rate giving a wait far longer than a test (never waited out)
    short_rate: str  # --rate giving a wait of a few seconds (waited out)
    received: Callable[[], Counter[str]]


@pytest.fixture
def postmark(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePostmark]:
    monkeypatch.setenv("POSTMARK_SERVER_TOKEN", SERVER_TOKEN)
    with FakePostmark() as fake:
        yield fake


@pytest.fixture
def mailgun(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMailgun]:
    monkeypatch.setenv("MAILGUN_API_KEY", MAILGUN_KEY)
    with FakeMailgun() as fake:
        yield fake


@pytest.fixture(params=["sendgrid", "postmark", "smtp", "outbox"])
def mailer(
    request: pytest.FixtureRequest, configure: Callable[..., Config], secret: object
) -> Mailer:
    if request.param == "postmark":
        fake = request.getfixturevalue("postmark")
        configure(provider="postmark", postmark={"api_url": fake.url, "batch_size": 10})
        return Mailer("postmark", 20, 10, "0.2", "2.5", fake.received_by)
    if request.param == "sendgrid":
        sendgrid = request.getfixturevalue("sendgrid")
        configure(provider="sendgrid", sendgrid={"api_host": sendgrid.url, "batch_size": 10})
        # 10 per request: the second request waits 10 / rate seconds.
        return Mailer("sendgrid", 20, 10, "0.2", "2.5", sendgrid.received_by)
    if request.param == "smtp":
        server = request.getfixturevalue("smtp_server")
        smtp = {"host": server.host, "port": server.port, "security": "none", "connections": 1}
        configure(provider="smtp", smtp=smtp)
        return Mailer("smtp", 3, 1, "0.02", "0.25", server.received_by)
    config = configure(provider="outbox")
    return Mailer("outbox", 3, 1, "0.02", "0.25", lambda: outbox_received(config.outbox_dir))


def outbox_received(outbox: Path) -> Counter[str]:
    received: Counter[str] = Counter()
    for path in (outbox / "new").glob("*") if (outbox / "new").is_dir() else ():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        received[message["To"].addresses[0].addr_spec] += 1
    return received


class Sender:
    """``newsletter send`` in a subprocess, its output read line by line as it comes."""

    def __init__(self, project: Path, *args: str, command: tuple[str, ...] = ()) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "newsletter", *(command or ("send", SEED, "--yes")), *args],
            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self.lines.append(line)
                self._seen.notify_all()

    @classmethod
    def command(cls, project: Path, *command: str) -> Sender:
        """Another ``newsletter`` command than ``send``."""
        return cls(project, command=command)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self._seen:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                assert left > 0 and self.process.poll() is None, (
                    f"{text!r} never came; output:\n{self.output}"
                )
                self._seen.wait(min(left, 0.5))

    def finish(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return code

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all
        self.finish()


def add_readers(store: Store, count: int) -> list[int]:
    return [
        store.add(f"reader{n}@example.org", name=f"Reader {n}", topics=["research"]).id
        for n in range(count)
    ]


def states(store: Store) -> dict[int, str]:
    with store.engine.connect() as connection:
        rows = connection.execute(ledger_rows.select().where(ledger_rows.c.campaign_id == 1))
        return {row.subscriber_id: row.state for row in rows}


def assert_nothing_in_flight(store: Store, mailer: Mailer, ids: list[int]) -> None:
    """The first hand-over went out and arrived; everyone the sender waited for is
    pending and got nothing."""
    rows = states(store)
    sent = [n for n, i in enumerate(ids) if rows[i] == "sent"]
    assert sent == list(range(mailer.batch)), rows
    assert all(rows[i] == "pending" for i in ids[mailer.batch :]), rows
    arrived = mailer.received()
    assert arrived == Counter({f"reader{n}@example.org": 1 for n in sent})


def assert_everyone_once(project: Path, store: Store, mailer: Mailer) -> None:
    rerun = Sender(project)
    assert rerun.finish() == 0, rerun.output
    assert mailer.received() == Counter(
        {f"reader{n}@example.org": 1 for n in range(mailer.readers)}
    )
    assert set(states(store).values()) == {"sent"}


def test_a_kill_during_the_rate_wait_leaves_the_waiting_readers_pending(
    project: Path, mailer: Mailer, shared_store: Store
) -> None:
    ids = add_readers(shared_store, mailer.readers)
    sender = Sender(project, "--rate", mailer.long_rate)
    sender.wait_for("for the rate limit")
    sender.kill()

    assert_nothing_in_flight(shared_store, mailer, ids)
    assert_everyone_once(project, shared_store, mailer)


def test_ctrl_c_during_the_rate_wait_stops_at_once_and_leaves_them_pending(
    project: Path, mailer: Mailer, shared_store: Store
) -> None:
    ids = add_readers(shared_store, mailer.readers)
    sender = Sender(project, "--rate", mailer.long_rate)
    sender.wait_for("for the rate limit")
    sender.process.send_signal(signal.SIGINT)

    # The wait is 50 s long: ending well before means the wait itself was cut short.
    assert sender.finish(timeout=30) == 130, sender.output
    assert "Stopping: nothing more is handed over" in sender.output
    assert "Error: interrupted (Ctrl-C): nothing more was handed over" in sender.output
    assert_nothing_in_flight(shared_store, mailer, ids)
    assert_everyone_once(project, shared_store, mailer)


@pytest.mark.parametrize(("cap", "stop"), [("per_hour", "ctrl-c"), ("per_day", "kill")])
def test_a_stop_during_a_cap_s_hours_long_wait_leaves_the_waiting_readers_pending(
    project: Path,
    mailer: Mailer,
    shared_store: Store,
    configure: Callable[..., Config],
    cap: str,
    stop: str,
) -> None:
    """sending.per_hour and per_day: the first hand-over fills the cap, and the rest
    wait the window out (an hour or a day) as pending readers, not in flight."""
    configure(sending={cap: mailer.batch})
    ids = add_readers(shared_store, mailer.readers)
    sender = Sender(project)
    sender.wait_for("for the rate limit (sending.rate, per_hour, per_day)")
    waited = float(sender.output.rpartition("waiting ")[2].partition(" s ")[0])
    assert waited > 3000  # the window, not a pace

    if stop == "kill":
        sender.kill()
    else:
        sender.process.send_signal(signal.SIGINT)
        assert sender.finish(timeout=30) == 130, sender.output
        assert "Error: interrupted (Ctrl-C): nothing more was handed over" in sender.output
    assert_nothing_in_flight(shared_store, mailer, ids)
    configure(sending={cap: None})  # lifted, or the next run waits for the window too
    assert_everyone_once(project, shared_store, mailer)


def test_a_reader_who_unsubscribes_during_the_rate_wait_is_not_mailed(
    project: Path, mailer: Mailer, shared_store: Store
) -> None:
    ids = add_readers(shared_store, mailer.readers)
    sender = Sender(project, "--rate", mailer.short_rate)
    sender.wait_for("for the rate limit")
    leaving = mailer.batch  # the first one the sender waits for
    shared_store.unsubscribe(ids[leaving], source="web")

    assert sender.finish() == 0, sender.output
    received = mailer.received()
    assert received[f"reader{leaving}@example.org"] == 0
    assert received == Counter(
        {f"reader{n}@example.org": 1 for n in range(mailer.readers) if n != leaving}
    )
    rows = states(shared_store)
    assert rows[ids[leaving]] == "skipped"
    assert sum(state == "sent" for state in rows.values()) == mailer.readers - 1


@pytest.mark.parametrize("provider", ["sendgrid", "postmark", "mailgun", "smtp"])
def test_a_kill_during_a_retry_back_off_leaves_the_refused_pending(
    project: Path,
    provider: str,
    configure: Callable[..., Config],
    shared_store: Store,
    secret: object,
    request: pytest.FixtureRequest,
) -> None:
    slow_retries = {"retries": 3, "retry_delay": 60, "retry_max_delay": 60}
    if provider == "sendgrid":
        sendgrid = request.getfixturevalue("sendgrid")
        configure(
            provider="sendgrid",
            sendgrid={"api_host": sendgrid.url, "batch_size": 10},
            sending=slow_retries,
        )
        sendgrid.normal_next()
        sendgrid.fail_next(503)  # the second request: "try later"
        received = sendgrid.received_by
        first = 10
    elif provider == "postmark":
        postmark = request.getfixturevalue("postmark")
        configure(
            provider="postmark",
            postmark={"api_url": postmark.url, "batch_size": 10},
            sending=slow_retries,
        )
        postmark.normal_next()
        postmark.fail_next(503)  # the second request: "try later"
        received = postmark.received_by
        first = 10
    elif provider == "mailgun":
        mailgun = request.getfixturevalue("mailgun")
        configure(
            provider="mailgun",
            mailgun={"api_url": mailgun.url, "domain": MAILGUN_DOMAIN, "batch_size": 10},
            sending=slow_retries,
        )
        mailgun.normal_next()
        mailgun.fail_next(503)  # the second request: "try later"
        received = mailgun.received_by
        first = 10
    else:
        server = request.getfixturevalue("smtp_server")
        smtp = {"host": server.host, "port": server.port, "security": "none", "connections": 1}
        configure(provider="smtp", smtp=smtp, sending=slow_retries)
        server.defer("reader1@example.org", times=1)
        received = server.received_by
        first = 1
    ids = add_readers(shared_store, 3 if provider == "smtp" else 20)
    sender = Sender(project)
    sender.wait_for("retry 1 of")  # said once the refused are back in pending
    sender.kill()

    rows = states(shared_store)
    assert [rows[i] for i in ids[:first]] == ["sent"] * first
    assert {rows[i] for i in ids[first:]} == {"pending"}, rows
    assert received() == Counter({f"reader{n}@example.org": 1 for n in range(first)})
    rerun = Sender(project)
    assert rerun.finish() == 0, rerun.output
    assert received() == Counter({f"reader{n}@example.org": 1 for n in range(len(ids))})
