"""Subject tests, sent: the sample gets the variants, run-due sends the winner to the
rest once the wait is over (time moved by the ``clock`` argument, never slept through),
``--pick`` decides by hand; nobody gets two subjects; on SQLite and PostgreSQL, through
the local SendGrid stand-in with tracking."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from newsletter.cli import cli
from newsletter.config import Config
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule import run_due, settle_after_send
from newsletter.send.schedule_queue import list_schedule, schedule_issue
from newsletter.send.sending import send_campaign
from newsletter.send.subject_test import decide, find_test, why
from newsletter.store import Store
from newsletter.store.scheduling import schedules
from tests.fakes.sendgrid import FakeSendGrid
from tests.send.conftest import SEED
from tests.send.subject_tests_helpers import (
    SUBJECTS,
    by_variant,
    later,
    report_events,
    subjects_received,
    tracked_sendgrid,
    variants_in_ledger,
    with_variants,
)
from tests.send.test_clicks import follow
from tests.send.test_send_cli import body_of, outbox_messages

pytestmark = pytest.mark.usefixtures("secret", "on_both")


def send_sample(runner: CliRunner) -> str:
    result = runner.invoke(cli, ["send", SEED, "--yes"])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_sample_gets_the_variants_and_run_due_sends_the_winner_to_the_rest(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    readers = subscribers(50)

    output = send_sample(runner)

    assert f"Variant A:  {SUBJECTS[0]}" in output
    assert f"Variant B:  {SUBJECTS[1]}" in output
    assert "Sample:     10 reader(s) (20%), drawn at random when it starts: A 5, B 5" in output
    assert "To send:    10" in output
    [campaign] = campaign_rows.list_campaigns(store)
    variants = variants_in_ledger(store, campaign.id)
    assert by_variant(variants) == {1: 5, 2: 5, None: 40}
    emails = {subscriber: f"reader{n}@example.org" for n, subscriber in enumerate(readers)}
    # The ledger says who got which subject, and the sample got exactly that.
    assert subjects_received(sendgrid) == {
        emails[subscriber]: [SUBJECTS[variant - 1]]
        for subscriber, variant in variants.items()
        if variant is not None
    }
    [entry] = list_schedule(config)
    test = find_test(store, campaign.id)
    assert test is not None
    assert (entry.state, entry.send_at) == ("queued", test.rest_at)
    assert "Rest:       40 reader(s) get the winner at " in output

    # B's readers click more: 3 of 5 against 1 of 5.
    sample = {variant: [s for s, v in variants.items() if v == variant] for variant in (1, 2)}
    report_events(store, campaign.id, "click", sample[2][:3] + sample[1][:1])

    status = runner.invoke(cli, ["status", SEED]).output
    assert "  subject test: winner not decided yet: the rest goes at " in status
    assert run_due(config, clock=later(3.9)) == []  # not yet: nothing more goes out
    assert sum(sendgrid.received_by().values()) == 10
    [result] = run_due(config, clock=later(4.1))

    assert result.outcome == "sent", result.message
    got = subjects_received(sendgrid)
    assert len(got) == 50 and all(len(subjects) == 1 for subjects in got.values())
    rest = [emails[subscriber] for subscriber, variant in variants.items() if variant is None]
    assert {got[address][0] for address in rest} == {SUBJECTS[1]}
    decided = find_test(store, campaign.id)
    assert decided is not None
    assert (decided.winner, decided.decided_by, decided.figures) == (
        2, "measured", ((1, 5), (3, 5))
    )  # fmt: skip
    assert campaign_rows.state_counts(store, campaign.id)["sent"] == 50
    assert (
        "  subject test: winner B, the higher click rate (A 20.0% (1 of 5), B 60.0% (3 of 5) "
        "clicked)"
    ) in runner.invoke(cli, ["status", SEED]).output
    assert run_due(config, clock=later(5)) == []  # sent: off the queue


def test_too_little_data_and_a_tie_fall_back_to_the_first_variant_and_say_why(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid, min_events=3, metric="opens")
    with_variants(project)
    subscribers(20)
    send_sample(runner)  # 4 readers: 2 each
    [campaign] = campaign_rows.list_campaigns(store)
    variants = variants_in_ledger(store, campaign.id)
    b_readers = [subscriber for subscriber, variant in variants.items() if variant == 2]
    report_events(store, campaign.id, "open", b_readers)  # 2 opens: fewer than 3
    report_events(store, campaign.id, "click", b_readers)  # clicks do not count here

    [result] = run_due(config, clock=later(4.1))

    assert result.outcome == "sent", result.message
    test = find_test(store, campaign.id)
    assert test is not None
    assert (test.winner, test.decided_by) == (1, "too little data")
    assert why(test) == (
        "A, the first variant: too little data (2 reader(s) opened in the sample, fewer "
        "than min_events 3)"
    )
    rest = {subject for subjects in subjects_received(sendgrid).values() for subject in subjects}
    assert rest == set(SUBJECTS)  # the sample got both, the rest only A
    assert (
        sum(subjects.count(SUBJECTS[1]) for subjects in subjects_received(sendgrid).values()) == 2
    )


def test_a_tie_falls_back_to_the_first_variant() -> None:
    assert decide([(3, 10), (3, 10)], min_events=2) == (1, "tie")
    assert decide([(1, 5), (2, 10), (1, 10)], min_events=2) == (1, "tie")  # 20% and 20%
    assert decide([(1, 5), (3, 10)], min_events=2) == (2, "measured")  # 20% < 30%
    assert decide([(0, 0), (1, 10)], min_events=1) == (2, "measured")  # none handed over: 0%


def test_pick_decides_by_hand_and_sends_the_rest_now(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project, "One", "Two", "Three")

    before = runner.invoke(cli, ["send", SEED, "--pick", "B", "--yes"])
    assert before.exit_code == 1
    assert before.output.splitlines()[-1] == (
        f"Error: {SEED}: --pick decides a subject test after its sample went out, "
        "and this issue has not sent its sample yet; send it without --pick"
    )
    subscribers(30)
    send_sample(runner)  # 6 readers: 2 each
    waiting = runner.invoke(cli, ["send", SEED, "--yes"])
    assert waiting.exit_code == 0, waiting.output
    assert "Nothing to send now: the subject test's sample went out; the rest (24) get the " in (
        waiting.output
    )
    wrong = runner.invoke(cli, ["send", SEED, "--pick", "D", "--yes"])
    assert wrong.exit_code == 1
    assert wrong.output.splitlines()[-1] == (
        "Error: --pick D: name one of this issue's subject variants, A, B, C (in the order "
        "of subject_variants:)"
    )

    picked = runner.invoke(cli, ["send", SEED, "--pick", "c", "--yes"])

    assert picked.exit_code == 0, picked.output
    assert "To send:    24" in picked.output
    got = subjects_received(sendgrid)
    assert len(got) == 30 and all(len(subjects) == 1 for subjects in got.values())
    assert sum(subjects == ["Three"] for subjects in got.values()) == 2 + 24
    [campaign] = campaign_rows.list_campaigns(store)
    test = find_test(store, campaign.id)
    assert test is not None
    assert (test.winner, test.decided_by) == (3, "picked")
    assert why(test) == "C, picked by hand (--pick C)"
    again = runner.invoke(cli, ["send", SEED, "--pick", "A", "--yes"])
    assert again.exit_code == 1
    assert "this subject test was decided on " in again.output
    assert [entry.state for entry in list_schedule(config, include_sent=True)] == ["sent"]
    assert run_due(config, clock=later(5)) == []


def test_send_refuses_a_subject_test_nothing_would_measure(
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    configure(tracking={"clicks": True})  # counted per link only: who clicked is not kept
    with_variants(project)
    subscribers(5)

    result = runner.invoke(cli, ["send", SEED, "--yes"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {SEED}: subject_variants: a subject test by clicks needs to know "
        "which reader clicked, and nothing records it: turn on first-party tracking "
        "(tracking.clicks: true and tracking.per_subscriber: true in newsletter.yaml), or "
        "send through a provider that tracks (sendgrid, postmark, mailgun or ses, with its "
        "tracking: true and its webhook)"
    ]
    assert campaign_rows.list_campaigns(store) == []


def test_a_reader_who_unsubscribes_after_the_sample_is_not_in_the_rest(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    readers = subscribers(20)
    send_sample(runner)
    [campaign] = campaign_rows.list_campaigns(store)
    rest = [s for s, variant in variants_in_ledger(store, campaign.id).items() if variant is None]
    store.unsubscribe(rest[0], source="web", campaign_id=campaign.id)

    [result] = run_due(config, clock=later(4.1))

    assert result.outcome == "sent", result.message
    left = f"reader{readers.index(rest[0])}@example.org"
    assert left not in sendgrid.received_by()
    assert sendgrid.received_by() == {
        f"reader{n}@example.org": 1 for n in range(20) if readers[n] != rest[0]
    }
    counts = campaign_rows.state_counts(store, campaign.id)
    assert (counts["sent"], counts["skipped"], counts["pending"]) == (19, 1, 0)


def test_a_scheduled_subject_test_sends_its_sample_when_due_and_queues_the_rest(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    project: Path,
) -> None:
    config = tracked_sendgrid(configure, sendgrid, wait="2h")
    with_variants(project)
    subscribers(20)
    due = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    schedule_issue(config, plan_send(config, project / SEED), due, zone="UTC")

    [sample] = run_due(config, clock=lambda: due)

    assert sample.outcome == "sample", sample.message
    assert sample.message == (
        "stem-cells-in-breast-milk: campaign 1: the subject test's sample went out (4 sent); "
        f"the rest (16) get the winner at {due + dt.timedelta(hours=2):%Y-%m-%d %H:%M} UTC"
    )
    [entry] = list_schedule(config)
    assert (entry.state, entry.send_at) == ("queued", due + dt.timedelta(hours=2))
    assert run_due(config, clock=lambda: due + dt.timedelta(hours=1)) == []
    [rest] = run_due(config, clock=lambda: due + dt.timedelta(hours=2))
    assert rest.outcome == "sent", rest.message
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(20)}


def test_test_sends_proof_each_subject_and_a_dry_run_builds_everyone(
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    configure(tracking={"clicks": True, "per_subscriber": True})  # the outbox, measured
    with_variants(project)
    subscribers(10)

    proofs = runner.invoke(cli, ["send", SEED, "--test", "me@example.org"])

    assert proofs.exit_code == 0, proofs.output
    assert proofs.output.splitlines()[-2:] == [
        "Test to me@example.org (subject A): sent",
        "Test to me@example.org (subject B): sent",
    ]
    assert sorted(message["Subject"] for message in outbox_messages(project)) == sorted(
        f"[TEST] {subject}" for subject in SUBJECTS
    )

    dry = runner.invoke(cli, ["send", SEED, "--dry-run"])

    assert dry.exit_code == 0, dry.output
    assert "Would send 10, failed 0" in dry.output
    assert dry.output.splitlines()[-1] == (
        "Subject test: every reader's message was built with the first subject; the sample "
        "is drawn when the campaign starts."
    )
    assert campaign_rows.list_campaigns(store) == []
    assert len(outbox_messages(project)) == 2  # the proofs only


def test_first_party_clicks_through_the_web_app_decide_the_winner(
    configure: Callable[..., Config],
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    config = configure(
        tracking={"clicks": True, "per_subscriber": True}, ab={"sample": "20%", "min_events": 2}
    )
    with_variants(project)
    subscribers(20)
    send_sample(runner)  # through the outbox: 2 readers each
    sample = outbox_messages(project)
    assert sorted(message["Subject"] for message in sample) == sorted(SUBJECTS * 2)
    # Both of B's readers click their own tracked link, one of A's does.
    clicked = [m for m in sample if m["Subject"] == SUBJECTS[1]] + [
        next(m for m in sample if m["Subject"] == SUBJECTS[0])
    ]
    follow(
        config,
        [
            re.findall(
                rf'href="{re.escape(config.site_url)}(/c/[^"/]+/[^"]+)"', body_of(m, "html")
            )[0]
            for m in clicked
        ],
    )

    [result] = run_due(config, clock=later(4.1))

    assert result.outcome == "sent", result.message
    [campaign] = campaign_rows.list_campaigns(store)
    test = find_test(store, campaign.id)
    assert test is not None
    assert (test.winner, test.figures) == (2, ((1, 2), (2, 2)))
    everyone = outbox_messages(project)
    assert len({message["To"] for message in everyone}) == len(everyone) == 20
    assert sum(message["Subject"] == SUBJECTS[1] for message in everyone) == 2 + 16


def test_a_measure_turned_off_during_the_wait_holds_the_rest_until_it_is_back(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    runner: CliRunner,
    project: Path,
) -> None:
    tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    subscribers(20)
    send_sample(runner)
    untracked = configure(sendgrid={"tracking": False})

    [held] = run_due(untracked, clock=later(4.1))

    assert held.outcome == "held", held.message
    assert "subject_variants: a subject test by clicks needs to know which reader" in held.message
    assert sum(sendgrid.received_by().values()) == 4
    tracked = configure(sendgrid={"tracking": True})
    # Held until the editor sends it (what `send` does, four hours on): the rest is due,
    # so the send decides and sends it, and the held entry is settled.
    summary = send_campaign(
        tracked, plan_send(tracked, project / SEED, now=later(4.1)()), clock=later(4.1)
    )
    settled = settle_after_send(tracked, summary)
    assert settled is not None and settled.state == "held"
    assert [entry.state for entry in list_schedule(tracked, include_sent=True)] == ["sent"]
    assert sendgrid.received_by() == {f"reader{n}@example.org": 1 for n in range(20)}


def test_a_send_killed_before_it_queued_the_rest_queues_it_when_run_again(
    configure: Callable[..., Config],
    sendgrid: FakeSendGrid,
    subscribers: Callable[..., list[int]],
    store: Store,
    runner: CliRunner,
    project: Path,
) -> None:
    """A kill between the sample's last batch and the rest's schedule entry: sending the
    issue again (it has nobody to send to now) queues the rest instead of leaving it to
    someone who remembers."""
    config = tracked_sendgrid(configure, sendgrid)
    with_variants(project)
    subscribers(50)
    send_sample(runner)
    [campaign] = campaign_rows.list_campaigns(store)
    test = find_test(store, campaign.id)
    assert test is not None
    with store.engine.begin() as connection:  # what the kill left: no entry
        connection.execute(delete(schedules))

    again = runner.invoke(cli, ["send", SEED, "--yes"])

    assert again.exit_code == 0, again.output
    assert "Nothing to send now: the subject test's sample went out" in again.output
    [entry] = list_schedule(config)
    assert (entry.state, entry.send_at) == ("queued", test.rest_at)
    assert sum(sendgrid.received_by().values()) == 10  # nothing more went out
    [result] = run_due(config, clock=later(4.1))
    assert result.outcome == "sent", result.message
    assert len(subjects_received(sendgrid)) == 50
