"""Outbox and SMTP record every message as it happens (issue 11, item 3).

A real ``newsletter send`` runs as a subprocess, slowed by ``--rate``; it is killed
(SIGKILL) or its outbox breaks in the middle of a batch. Afterwards at most one message
per connection may be ``unknown``: the ones before it are ``sent`` (and did arrive),
the ones after it still ``pending`` (and did not).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.store import Store
from newsletter.store.schema import ledger as ledger_rows
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import SEED

pytestmark = pytest.mark.slow


def send(project: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", SEED, "--yes", *args],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def states(store: Store) -> dict[int, str]:
    with store.engine.connect() as connection:
        rows = connection.execute(ledger_rows.select().where(ledger_rows.c.campaign_id == 1)).all()
    return {row.subscriber_id: row.state for row in rows}


def test_smtp_killed_mid_batch_leaves_at_most_one_unknown_per_connection(
    project: Path,
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    store: Store,
    secret: object,
) -> None:
    settings = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    configure(provider="smtp", smtp={**settings, "connections": 2}, sending={"batch_size": 40})
    ids = subscribers(40)
    sender = send(project, "--rate", "40")
    try:
        wait_until(lambda: smtp_server.accepted >= 12)
    finally:
        sender.kill()
        sender.communicate()

    rows = states(store)
    arrived = smtp_server.received_by()
    sent = [i for i in ids if rows[i] == "sent"]
    in_flight = [i for i in ids if rows[i] == "in_flight"]
    pending = [i for i in ids if rows[i] == "pending"]
    assert len(in_flight) <= 2, rows  # one per connection, at most
    assert len(sent) >= 10
    assert all(arrived[f"reader{ids.index(i)}@example.org"] == 1 for i in sent)
    assert not any(arrived[f"reader{ids.index(i)}@example.org"] for i in pending)
    assert len(sent) + len(in_flight) + len(pending) == 40

    rerun = send(project)
    output, _ = rerun.communicate(timeout=60)

    assert rerun.returncode == 0, output
    counts = campaign_rows.state_counts(store, 1)
    assert counts["unknown"] == len(in_flight) and counts["pending"] == 0, output
    assert counts["sent"] == 40 - len(in_flight)
    arrived = smtp_server.received_by()
    for n in range(40):
        assert arrived[f"reader{n}@example.org"] == 1 or ids[n] in in_flight
    assert "provider events settle" not in output  # SMTP has none


def test_a_broken_outbox_mid_batch_keeps_the_unwritten_pending_and_nothing_unknown(
    project: Path,
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
) -> None:
    config = configure(provider="outbox", sending={"batch_size": 60})
    subscribers(60)
    outbox = config.outbox_dir
    # Ten a second: the folder breaks seconds before the last would be written, however
    # slowly this test gets its turn on a loaded machine.
    sender = send(project, "--rate", "10")
    wait_until(lambda: (outbox / "new").is_dir() and len(list((outbox / "new").iterdir())) >= 5)
    # The folder becomes unusable (as on a full disk): every further write fails.
    (outbox / "new").rename(outbox / "written")
    (outbox / "new").write_text("not a folder")
    output, _ = sender.communicate(timeout=60)

    assert sender.returncode == 1, output
    assert "cannot write to the outbox" in output
    written = len(list((outbox / "written").iterdir()))
    counts = campaign_rows.state_counts(store, 1)
    assert (counts["sent"], counts["unknown"], counts["pending"]) == (written, 0, 60 - written)

    (outbox / "new").unlink()
    (outbox / "written").rename(outbox / "new")
    again = send(project)
    output, _ = again.communicate(timeout=60)

    assert again.returncode == 0, output
    assert len(list((outbox / "new").iterdir())) == 60  # everyone once, nobody twice
    assert campaign_rows.state_counts(store, 1)["sent"] == 60
