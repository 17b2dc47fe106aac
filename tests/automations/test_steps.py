"""Sequences sent by ``run-due``: who gets which step, once, on both databases.

Time moves through the ``clock`` argument ("3 days later"), never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from newsletter.automations.digest import run_due_digests
from newsletter.automations.steps import run_due_steps
from newsletter.cli import cli
from newsletter.config import Config
from newsletter.errors import AutomationError
from newsletter.send.schedule import DueChecker
from newsletter.store import Store
from newsletter.store.automation_tables import automation_entries
from newsletter.store.schema import subscribers
from newsletter.store.statuses import StatusChange
from tests.automations.conftest import LATER, clock_at, now
from tests.send.test_send_cli import outbox_messages

pytestmark = pytest.mark.usefixtures("on_both")


def backdate(store: Store, subscriber_id: int, by: dt.timedelta) -> None:
    """Move a reader's entry into the past (and their opt-in with it)."""
    with store.engine.begin() as connection:
        entered = connection.scalar(
            select(automation_entries.c.entered_at).where(
                automation_entries.c.subscriber_id == subscriber_id
            )
        )
        connection.execute(
            update(automation_entries)
            .where(automation_entries.c.subscriber_id == subscriber_id)
            .values(entered_at=entered - by)
        )
        connection.execute(
            update(subscribers)
            .where(subscribers.c.id == subscriber_id)
            .values(opt_in_at=entered - by)
        )


def received(project: Path) -> list[tuple[str, str]]:
    """(address, subject) of every message in the outbox, sorted."""
    return sorted(
        (message["To"].addresses[0].addr_spec, str(message["Subject"]))
        for message in outbox_messages(project)
    ) if (project / "outbox").exists() else []  # fmt: skip


def test_a_new_subscriber_gets_the_welcome_mail_once(
    welcome: Config, store: Store, project: Path
) -> None:
    store.add("ada@example.org", name="Ada")

    first = run_due_steps(welcome)
    again = run_due_steps(welcome)

    assert received(project) == [("ada@example.org", "Thanks for joining")]
    assert [result.outcome for result in first] == ["sent"]
    assert again == []


def test_an_import_greets_nobody_unless_asked(
    welcome: Config, runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    quiet = tmp_path / "moved.csv"
    quiet.write_text("email\nold1@example.org\nold2@example.org\n", encoding="utf-8")
    greeted = tmp_path / "new.csv"
    greeted.write_text("email\nnew@example.org\n", encoding="utf-8")

    assert runner.invoke(cli, ["subscribers", "import", str(quiet)]).exit_code == 0
    assert runner.invoke(cli, ["subscribers", "import", str(greeted), "--welcome"]).exit_code == 0
    result = runner.invoke(cli, ["run-due"])

    assert result.exit_code == 0, result.output
    assert received(project) == [("new@example.org", "Thanks for joining")]


def test_the_second_step_comes_three_days_later_and_not_to_who_left(
    welcome: Config, store: Store, project: Path, write_step: Callable[..., Path]
) -> None:
    write_step("02-our-best", "3 days", title="Our best stories")
    stays = store.add("stays@example.org")
    leaves = store.add("leaves@example.org")
    run_due_steps(welcome)
    store.unsubscribe(leaves.id, source="test")

    too_early = run_due_steps(welcome, clock=clock_at(now() + LATER / 2))
    assert too_early == []
    run_due_steps(welcome, clock=clock_at(now() + LATER))

    assert received(project) == [
        ("leaves@example.org", "Thanks for joining"),
        ("stays@example.org", "Our best stories"),
        ("stays@example.org", "Thanks for joining"),
    ]
    assert stays.id != leaves.id


@pytest.mark.parametrize("leaving", ["bounced", "complained", "erased"])
def test_who_bounces_complains_or_is_erased_leaves_every_sequence_at_once(
    leaving: str,
    configure: Callable[..., Config],
    store: Store,
    project: Path,
    write_step: Callable[..., Path],
) -> None:
    write_step("01-thanks", "0 days", title="Thanks for joining")
    write_step("02-our-best", "3 days", title="Our best stories")
    write_step("01-course", "1 day", title="Lesson one", sequence="course")
    config = configure(
        automations={
            "welcome": {"path": "automations/welcome"},
            "course": {"path": "automations/course"},
        }
    )
    store.add("stays@example.org")
    leaves = store.add("leaves@example.org")
    run_due_steps(config)
    if leaving == "erased":
        assert store.forget("leaves@example.org")
    else:
        store.change_statuses([StatusChange(leaves.id, leaving, "test")])

    run_due_steps(config, clock=clock_at(now() + LATER))

    assert received(project) == [
        ("leaves@example.org", "Thanks for joining"),
        ("stays@example.org", "Lesson one"),
        ("stays@example.org", "Our best stories"),
        ("stays@example.org", "Thanks for joining"),
    ]


def test_someone_who_left_and_came_back_is_out_of_the_sequence(
    welcome: Config, store: Store, project: Path, write_step: Callable[..., Path]
) -> None:
    write_step("02-our-best", "3 days", title="Our best stories")
    reader = store.add("back@example.org")
    run_due_steps(welcome)
    store.unsubscribe(reader.id, source="test")
    store.resubscribe(reader.id, source="test")

    run_due_steps(welcome, clock=clock_at(now() + LATER))

    assert received(project) == [("back@example.org", "Thanks for joining")]


def test_a_step_added_later_goes_only_to_who_has_not_passed_its_time(
    welcome: Config, store: Store, project: Path, write_step: Callable[..., Path]
) -> None:
    early = store.add("early@example.org")
    backdate(store, early.id, dt.timedelta(days=4))  # joined four days ago
    store.add("late@example.org")
    run_due_steps(welcome)

    write_step("02-our-best", "3 days", title="Our best stories")
    run_due_steps(welcome, clock=clock_at(now() + LATER))

    assert received(project) == [
        ("late@example.org", "Our best stories"),
        ("late@example.org", "Thanks for joining"),
    ]


def test_an_edited_step_goes_out_as_edited_and_not_again_to_who_had_it(
    welcome: Config, store: Store, project: Path, write_step: Callable[..., Path]
) -> None:
    store.add("first@example.org")
    run_due_steps(welcome)
    write_step("01-thanks", "0 days", title="Welcome aboard")
    store.add("second@example.org")

    run_due_steps(welcome)

    assert received(project) == [
        ("first@example.org", "Thanks for joining"),
        ("second@example.org", "Welcome aboard"),
    ]


def test_a_step_without_after_stops_everything_with_one_line(
    welcome: Config, store: Store, project: Path, write_step: Callable[..., Path]
) -> None:
    broken = write_step("02-untimed", None)
    store.add("ada@example.org")

    with pytest.raises(AutomationError) as raised:
        run_due_steps(welcome)

    assert str(raised.value) == (
        f"{broken}: front matter: after: required in a sequence's step; write e.g. "
        "'after: 0 days' (right away) or 'after: 3 days'"
    )
    assert received(project) == []


def test_a_sequence_folder_that_is_not_there_is_named(
    configure: Callable[..., Config], runner: CliRunner, project: Path
) -> None:
    configure(automations={"welcome": {"path": "automations/nowhere"}})

    result = runner.invoke(cli, ["run-due"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: newsletter.yaml: automations.welcome.path: automations/nowhere is not a "
        "folder; create it (newsletter new --automation welcome TITLE) or fix the path\n"
    )


def test_automations_lists_each_step_with_who_is_due_and_what_was_sent(
    welcome: Config,
    store: Store,
    runner: CliRunner,
    write_step: Callable[..., Path],
    configure: Callable[..., Config],
) -> None:
    write_step("02-our-best", "3 days", title="Our best stories")
    store.add("ada@example.org")
    store.add("bob@example.org")

    before = runner.invoke(cli, ["automations"])
    run_due_steps(welcome)
    after = runner.invoke(cli, ["automations"])

    assert before.exit_code == 0, before.output
    assert before.output.splitlines() == [
        "welcome (automations/welcome, everyone): 2 in it, 2 entered",
        "  STEP         AFTER   DUE NOW  WAITING  SENT  FAILED  UNKNOWN  SKIPPED",
        "  01-thanks    0 days  2        0        0     0       0        0",
        "  02-our-best  3 days  0        0        0     0       0        0",
    ]
    assert after.output.splitlines()[2] == (
        "  01-thanks    0 days  0        0        2     0       0        0"
    )
    listed = json.loads(runner.invoke(cli, ["automations", "--json"]).output)
    assert [(step["step"], step["sent"]) for step in listed["sequences"][0]["steps"]] == [
        ("01-thanks", 2),
        ("02-our-best", 0),
    ]


def test_a_reader_whose_step_is_due_but_not_yet_sent_is_in_the_sequence(
    welcome: Config, store: Store, runner: CliRunner
) -> None:
    # A one-step welcome sequence: the new reader's welcome mail is still ahead of them.
    store.add("ada@example.org")

    def heading() -> str:
        result = runner.invoke(cli, ["automations"])
        assert result.exit_code == 0, result.output
        return result.output.splitlines()[0]

    assert heading() == "welcome (automations/welcome, everyone): 1 in it, 1 entered"
    run_due_steps(welcome)
    assert heading() == "welcome (automations/welcome, everyone): 0 in it, 1 entered"


def test_a_reader_past_the_last_steps_time_who_has_not_had_it_is_in_the_sequence(
    welcome: Config,
    store: Store,
    runner: CliRunner,
    write_step: Callable[..., Path],
    project: Path,
) -> None:
    write_step("02-our-best", "3 days", title="Our best stories")
    written = (now() - LATER - LATER).timestamp()  # the steps were there when ada joined
    for step in (project / "automations/welcome").iterdir():
        os.utime(step, (written, written))
    ada = store.add("ada@example.org")
    backdate(store, ada.id, LATER)  # both steps due; run-due has not run since

    listed = json.loads(runner.invoke(cli, ["automations", "--json"]).output)
    assert listed["sequences"][0]["in_it"] == 1
    assert [step["due_now"] for step in listed["sequences"][0]["steps"]] == [1, 1]

    run_due_steps(welcome)
    listed = json.loads(runner.invoke(cli, ["automations", "--json"]).output)
    assert listed["sequences"][0]["in_it"] == 0
    assert [step["sent"] for step in listed["sequences"][0]["steps"]] == [1, 1]


def test_report_sums_each_step_over_its_versions(
    welcome: Config, store: Store, runner: CliRunner, write_step: Callable[..., Path]
) -> None:
    store.add("ada@example.org")
    run_due_steps(welcome)
    write_step("01-thanks", "0 days", title="Welcome aboard")  # a second version
    store.add("bob@example.org")
    run_due_steps(welcome)

    result = runner.invoke(cli, ["report"])
    as_json = json.loads(runner.invoke(cli, ["report", "--format", "json"]).output)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index("Automations, per step (every version of its file):")
    assert lines[at + 1].split() == [
        "STEP", "VERSIONS", "RECIPIENTS", "HANDED", "OVER", "FAILED", "UNKNOWN", "PENDING",
        "BOUNCED", "COMPLAINED", "UNSUB",
    ]  # fmt: skip
    assert lines[at + 2].split() == [
        "welcome/01-thanks",
        "2",
        "2",
        "2",
        "0",
        "0",
        "0",
        "0",
        "0",
        "0",
    ]
    [step] = as_json["automations"]
    assert (step["step"], step["versions"], step["handed_over"]) == ("01-thanks", 2, 2)


def test_serves_minute_loop_sends_the_welcome_mail_too(
    welcome: Config, store: Store, project: Path
) -> None:
    store.add("ada@example.org")
    checker = DueChecker(welcome, interval=0.05, also=(run_due_digests, run_due_steps))

    checker.start()
    try:
        deadline = time.monotonic() + 60
        while not received(project):
            assert time.monotonic() < deadline, "the background check never sent the welcome"
            time.sleep(0.05)
        time.sleep(0.3)  # a few more rounds: nothing more goes out
    finally:
        checker.stop()

    assert received(project) == [("ada@example.org", "Thanks for joining")]
