"""Scheduled sending: a queue of issues with a time, and the run that sends what is due.

``newsletter send ISSUE --at WHEN`` (or ``send_at:`` in the issue) plans and checks the
issue as for sending now, then queues it (:func:`schedule_issue`). :func:`run_due`
sends every queued issue whose time has come and returns; cron, a systemd timer or
``newsletter serve``'s background :class:`DueChecker` call it every minute.

Nothing here can send twice: :func:`run_due` goes through
:func:`newsletter.send.sending.send_campaign`, so the campaign ledger and its lease decide
who gets the issue. Two ``run-due`` at once: one holds the lease, the other finds it
held and leaves the campaign to it. A queued row is marked ``sent`` only once its
campaign has nobody left pending; until then each run resumes it.

The version that goes out is the version that was checked: the issue is rebuilt and
re-checked when it goes out, and if the file changed since it was scheduled the run
says so (in its log and in ``newsletter schedule``). Errors hold the issue with the
reason; each later run says it skipped it and why; scheduling it again (``send --at``)
replaces the held entry, and sending it by hand (``send``) marks it sent
(:func:`settle_after_send`).

Here: running what is due. The queue itself is :mod:`newsletter.send.schedule_queue`,
cancelling :mod:`newsletter.send.schedule_cancel`, reading times
:mod:`newsletter.send.schedule_times`.

Time comes from a ``clock`` argument (a function returning an aware datetime), so
tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select

from newsletter.config import Config
from newsletter.errors import NewsletterError, SendError
from newsletter.send.lease import lease_holder
from newsletter.send.plan import plan_send
from newsletter.send.run_summary import SendSummary
from newsletter.send.schedule_cancel import CANCELLED, schedule_cancelled
from newsletter.send.schedule_queue import (
    Scheduled,
    find_entry,
    queue_rest,
    scheduled_from_row,
    update_entry,
)
from newsletter.send.schedule_times import Clock, issue_hash, system_clock
from newsletter.send.sending import send_campaign
from newsletter.send.stop_request import signalled
from newsletter.store import Store, open_store
from newsletter.store.scheduling import schedules

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass(frozen=True)
class DueResult:
    slug: str
    # sent, held, busy, stopped, skipped (held earlier), cancelled, sample (a subject
    # test's sample went out; its rest is queued for later)
    outcome: str
    message: str


def run_due(
    config: Config,
    *,
    clock: Clock = system_clock,
    say: Say | None = None,
    stopping: threading.Event | None = None,
) -> list[DueResult]:
    """Send every queued issue whose time has come; what became of each. Once
    ``stopping`` is set (Ctrl-C), the issue being sent stops before its next hand-over
    and stays queued, and no other issue starts."""
    tell = say or (lambda message: log.info("%s", message))
    # serve's checker runs every minute: a held issue was logged when it was held, and is
    # not logged again each minute (run-due, for cron's mail, says it every time).
    tell_skipped = say or (lambda message: log.debug("%s", message))
    now = clock()
    store = open_store(config)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(schedules)
                .where(
                    or_(
                        (schedules.c.state == "queued") & (schedules.c.send_at <= now),
                        schedules.c.state == "held",  # reported on every run until acted on
                    )
                )
                .order_by(schedules.c.send_at, schedules.c.slug)
            ).all()
        results = []
        for entry in map(scheduled_from_row, rows):
            if stopping is not None and stopping.is_set():
                break  # what is left stays as it is for the next run
            if entry.state == "queued":
                results.append(_send_due(config, store, entry, tell, clock, stopping))
            else:
                results.append(_skip(entry, tell_skipped))
    finally:
        store.close()
    return results


def _send_due(
    config: Config,
    store: Store,
    entry: Scheduled,
    say: Say,
    clock: Clock,
    stopping: threading.Event | None,
) -> DueResult:
    path = Path(entry.issue_path)
    if not path.exists():
        return _hold(store, entry, f"the issue file {path} is gone", say)
    changed = issue_hash(path) != entry.issue_hash
    note = None
    if changed:
        note = "the issue changed after it was scheduled: rebuilt and re-checked"
        say(f"{entry.slug}: {note}")
    try:
        plan = plan_send(
            config,
            path,
            provider=entry.provider,
            topics=entry.topics,
            now=clock(),
        )
    except NewsletterError as error:
        return _hold(store, entry, str(error), say)
    if plan.has_errors:
        errors = [finding for finding in plan.findings if finding.level == "error"]
        reason = f"the pre-send checks found {len(errors)} error(s): {errors[0]}"
        return _hold(store, entry, reason, say)
    if note:
        update_entry(store, entry.slug, note=f"{note} (checks ok)")
    say(f"{entry.slug}: sending to {plan.to_send()} recipient(s) through {plan.provider}")
    try:
        summary = send_campaign(
            config,
            plan,
            stopping=stopping,
            stop_when=schedule_cancelled(store, entry.slug),
            clock=clock,
            notice=lambda message: say(f"{entry.slug}: {message}"),  # a wait, a retry
        )
    except SendError as error:
        holder = lease_holder(store, entry.slug)
        if holder is not None:
            message = f"{entry.slug}: another process is sending it ({holder}); left to it"
            say(message)
            return DueResult(entry.slug, "busy", message)
        return _hold(store, entry, str(error), say)
    totals = summary.totals
    rest = queue_rest(config, plan, summary)
    if rest is not None:
        message = (
            f"{entry.slug}: campaign {summary.campaign_id}: the subject test's sample went "
            f"out ({summary.sent} sent); the rest ({summary.rest_pending}) get the "
            f"winner at {rest.local_time:%Y-%m-%d %H:%M %Z}"
        )
        say(message)
        return DueResult(entry.slug, "sample", message)
    if summary.stopped == CANCELLED:
        message = (
            f"{entry.slug}: stopped: {CANCELLED} (campaign {summary.campaign_id}: "
            f"{totals.get('sent', 0)} sent, {totals.get('pending', 0)} pending)"
        )
        say(message)
        return DueResult(entry.slug, "cancelled", message)
    if summary.stopped or totals.get("pending") or totals.get("in_flight"):
        reason = why_stopped(summary, "recipients are still pending")
        message = f"{entry.slug}: stopped ({reason}); the next run-due resumes it"
        update_entry(store, entry.slug, note=f"stopped: {reason}; the next run-due resumes it")
        say(message)
        return DueResult(entry.slug, "stopped", message)
    done = f"sent {totals['sent']}, failed {totals['failed']}, unknown {totals['unknown']}"
    update_entry(store, entry.slug, state="sent", note=f"{note + '; ' if note else ''}{done}")
    message = f"{entry.slug}: campaign {summary.campaign_id}: {done}"
    say(message)
    return DueResult(entry.slug, "sent", message)


def why_stopped(summary: SendSummary, otherwise: str) -> str:
    """Why a send of run-due's stopped, for its log: the signal in short (the next
    run-due, not ``send``, resumes it), else the provider's reason, else ``otherwise``."""
    return signalled(summary.stopped) or summary.stopped or otherwise


def _skip(entry: Scheduled, say: Say) -> DueResult:
    """A held entry stays held until the editor acts; each run says so, and why."""
    message = (
        f"{entry.slug}: skipped, held (was due {entry.local_time:%Y-%m-%d %H:%M %Z}): "
        f"{entry.note}; fix it, then send it ('newsletter send {entry.issue_path} --now') "
        "or schedule it again (--at WHEN)"
    )
    say(message)
    return DueResult(entry.slug, "skipped", message)


def settle_after_send(config: Config, summary: SendSummary) -> Scheduled | None:
    """After ``newsletter send`` ran the issue's campaign by hand: a queued or held entry
    for it is marked ``sent`` once nobody is left pending, so that ``schedule`` no longer
    shows an old error and ``run-due`` does not wait for it. The entry as it was, or None
    when there was nothing to settle (no entry, or recipients still pending)."""
    totals = summary.totals
    if summary.dry_run or summary.stopped or totals.get("pending") or totals.get("in_flight"):
        return None
    store = open_store(config)
    try:
        entry = find_entry(store, summary.slug)
        if entry is None or entry.state == "sent":
            return None
        done = f"sent {totals['sent']}, failed {totals['failed']}, unknown {totals['unknown']}"
        update_entry(store, entry.slug, state="sent", note=f"sent with 'newsletter send': {done}")
        return entry
    finally:
        store.close()


def _hold(store: Store, entry: Scheduled, reason: str, say: Say) -> DueResult:
    update_entry(store, entry.slug, state="held", note=reason)
    message = f"{entry.slug}: held: {reason}"
    say(message)
    return DueResult(entry.slug, "held", message)


class DueChecker:
    """``newsletter serve``'s background thread: :func:`run_due` every ``interval`` s."""

    def __init__(
        self,
        config: Config,
        *,
        interval: float = 60.0,
        clock: Clock = system_clock,
        also: tuple[Callable[..., object], ...] = (),
        stopping: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.interval = interval
        self.clock = clock
        # More runs of the minute, called as ``run(config, clock=clock, stopping=...)``
        # after run_due (the CLI passes the automations' run: this module cannot import it).
        self.also = also
        # Set (by stop(), or by serve's signal handler): the send under way stops before
        # its next hand-over, as run-due's does on Ctrl-C, and no other run starts.
        self._stop = stopping or threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsletter-run-due", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop, waiting for the batch with the provider to be answered and recorded."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.config, clock=self.clock, stopping=self._stop)
            except Exception:  # a bad run must not end the web app's checks for good
                log.exception("checking for scheduled issues failed")
            for run in self.also:
                if self._stop.is_set():
                    break
                try:
                    run(self.config, clock=self.clock, stopping=self._stop)
                except Exception:
                    log.exception("checking for due automation steps failed")
            self._stop.wait(self.interval)
