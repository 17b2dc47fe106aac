"""A subject test's sample reader whose message the SMTP relay deferred (4xx after every
retry, so still ``pending``): a real aiosmtpd server on 127.0.0.1, first-party tracking,
on SQLite and PostgreSQL. The reader keeps their own subject, gets exactly one message,
never the rest's, and the decision counts only who was handed over during the wait."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows, subject_test
from newsletter.send.schedule import run_due
from newsletter.send.subject_test import draw, find_test
from newsletter.store import Store
from tests.fakes.smtp import FakeSmtp
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import SUBJECTS, later, with_variants
from tests.send.test_clicks import follow
from tests.send.test_send_cli import body_of

pytestmark = pytest.mark.usefixtures("secret", "on_both")


SEED_OF_THE_DRAW = "0123456789abcdef"


def subjects_by_address(server: FakeSmtp) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for arrival in server.arrivals:
        message = arrival.message()
        for address in arrival.recipients:
            got.setdefault(address, []).append(str(message["Subject"]))
    return got


@dataclass(frozen=True)
class DeferredSample:
    config: Config
    deferred: str  # B's reader the relay deferred through every retry
    clicker: str  # B's other reader, who clicked


@pytest.fixture
def deferred_sample(
    configure: Callable[..., Config],
    smtp_server: FakeSmtp,
    subscribers: Callable[..., list[int]],
    runner: CliRunner,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DeferredSample:
    """20 readers, a sample of 4 (A 2, B 2) sent through SMTP: one of B's deferred (still
    pending), the other clicked; the rest waits for the winner."""
    config = configure(
        provider="smtp",
        smtp={"host": smtp_server.host, "port": smtp_server.port, "security": "none"},
        tracking={"clicks": True, "per_subscriber": True},
        ab={"sample": "20%", "wait": "4h", "min_events": 1},
    )
    with_variants(project)
    ids = subscribers(20)
    # The draw's seed fixed, so the test knows the sample before it is drawn.
    monkeypatch.setattr(subject_test, "new_seed", lambda: SEED_OF_THE_DRAW)
    sample = draw(ids, percent=20, variants=2, seed=SEED_OF_THE_DRAW)
    b_readers = sorted(i for i, variant in sample.items() if variant == 2)
    deferred, clicker = (f"reader{ids.index(i)}@example.org" for i in b_readers)
    smtp_server.defer(deferred, times=4)  # the first try and three retries: still pending

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 0, result.output
    assert "Sent 3, failed 0, skipped 0, deferred 1, unknown 0" in result.output
    # The rest is the 16 readers outside the sample; the deferred one is still B's.
    assert "Rest:       16 reader(s) get the winner at " in result.output
    assert deferred not in subjects_by_address(smtp_server)
    [b_message] = [a.message() for a in smtp_server.arrivals if clicker in a.recipients]
    link = re.findall(
        rf'href="{re.escape(config.site_url)}(/c/[^"/]+/[^"]+)"', body_of(b_message, "html")
    )[0]
    follow(config, [link])
    return DeferredSample(config, deferred, clicker)


def test_a_sample_reader_the_relay_deferred_keeps_their_subject_and_is_not_in_the_rest(
    deferred_sample: DeferredSample, smtp_server: FakeSmtp, store: Store
) -> None:
    # The relay takes it now: the decision, then the reader's own subject, then the rest.
    [due] = run_due(deferred_sample.config, clock=later(4.1))

    assert due.outcome == "sent", due.message
    got = subjects_by_address(smtp_server)
    assert got == {f"reader{n}@example.org": [got[f"reader{n}@example.org"][0]] for n in range(20)}
    assert got[deferred_sample.deferred] == [SUBJECTS[1]]
    [campaign] = campaign_rows.list_campaigns(store)
    test = find_test(store, campaign.id)
    assert test is not None
    # Handed over during the wait: A 2 (none clicked), B 1 (who clicked); the deferred
    # reader, who had no time to open it, is not counted.
    assert (test.winner, test.figures) == (2, ((0, 2), (1, 1)))
    assert sum(subjects == [SUBJECTS[1]] for subjects in got.values()) == 2 + 16
    assert campaign_rows.state_counts(store, campaign.id)["sent"] == 20


def test_a_sample_reader_still_deferred_when_the_rest_goes_gets_their_subject_on_the_next_run(
    deferred_sample: DeferredSample, smtp_server: FakeSmtp, store: Store
) -> None:
    smtp_server.defer(deferred_sample.deferred, times=4)  # deferred through this run too

    [due] = run_due(deferred_sample.config, clock=later(4.1))

    assert due.outcome == "stopped", due.message
    got = subjects_by_address(smtp_server)
    assert deferred_sample.deferred not in got
    assert len(got) == 19 and all(len(subjects) == 1 for subjects in got.values())
    [campaign] = campaign_rows.list_campaigns(store)
    assert campaign_rows.state_counts(store, campaign.id)["pending"] == 1

    [due] = run_due(deferred_sample.config, clock=later(4.2))

    assert due.outcome == "sent", due.message
    got = subjects_by_address(smtp_server)
    assert got[deferred_sample.deferred] == [SUBJECTS[1]]
    assert len(got) == 20 and all(len(subjects) == 1 for subjects in got.values())
    test = find_test(store, campaign.id)
    assert test is not None
    assert (test.winner, test.figures) == (2, ((0, 2), (1, 1)))  # decided once
