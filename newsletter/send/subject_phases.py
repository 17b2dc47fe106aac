"""Sending a subject test's campaign phase by phase (:class:`Phases`), for
:func:`newsletter.send.sending.send_campaign`, which holds the campaign's lease.

When the rest is due (its time came, or a pick), each run first decides the winner,
once (:mod:`newsletter.send.subject_test`), on the sample handed over so far. Then it
finishes the sample: one :class:`~newsletter.send.campaign.CampaignRun` per subject over
the ledger rows of that subject (``variant == n``), each with its own subject and
otherwise the same content; and once the rest is due, one more run sends the winner to
the rest (``variant IS NULL``). Each run only ever moves its own rows,
and each row is sent at most once, so nobody gets two subjects; a run killed in either
phase is resumed by the next, which starts by marking what the dead one had in flight
``unknown`` (over the whole campaign).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from newsletter.errors import SendError
from newsletter.send import campaign_rows, subject_test
from newsletter.send.campaign import CampaignRun
from newsletter.send.lease import Lease
from newsletter.send.ledger import Ledger
from newsletter.send.providers import Content
from newsletter.send.run_summary import SendSummary
from newsletter.store import Store
from newsletter.store.schema import ledger
from newsletter.store.subject_tests import VariantStates, count_by_variant

MakeRun = Callable[[Content, Any, int], CampaignRun]


class Phases:
    """The phases of one subject test's campaign that are due now."""

    def __init__(
        self,
        store: Store,
        campaign: campaign_rows.Campaign,
        content: Content,
        make_run: MakeRun,
        lease: Lease,
        size: int,
    ) -> None:
        self.store = store
        self.campaign = campaign
        self.content = content
        self.make_run = make_run
        self.lease = lease
        self.size = size

    def send(
        self, *, retry_unknown: bool, retry_failed: bool, pick: str | None, now: dt.datetime
    ) -> SendSummary:
        test = subject_test.find_test(self.store, self.campaign.id)
        if test is None:
            raise SendError(
                f"campaign {self.campaign.id} has no subject test recorded; send it again"
            )
        whole = Ledger(self.store, self.campaign.id)
        recovered = whole.recover()
        requeued = whole.requeue_unknown() if retry_unknown else 0
        requeued_failed = whole.requeue_failed() if retry_failed else 0
        # Who is pending in each phase, counted once: a phase's run moves only its own rows.
        with self.store.engine.connect() as connection:
            states = count_by_variant(connection, self.campaign.id)
        if pick is not None:
            test = self._pick(test, pick, now, states)
        elif test.winner is None and now >= test.rest_at:
            # Decided before a sample reader still pending (deferred by the server, or
            # left by a kill) goes out: handed over now, they had no time to click or
            # open, and counting them would lower their subject's rate.
            figures = subject_test.measure(self.store, test, states)
            winner, how = subject_test.decide(figures, test.min_events)
            test = subject_test.record_decision(
                self.store, test, winner=winner, decided_by=how, figures=figures, now=now
            )
        summaries: list[SendSummary] = []
        done = 0
        for number, subject in enumerate(test.variants, 1):
            pending = states.readers(number, "pending")
            summary = self._phase(subject, ledger.c.variant == number, pending, done, summaries)
            done += _handled(summary)
            if summary is not None and summary.stopped:
                return self._summary(summaries, recovered, requeued, requeued_failed, None)
        if test.winner is None:
            rest = (test.rest_at, states.readers(None, "pending"))
            return self._summary(summaries, recovered, requeued, requeued_failed, rest)
        winning = test.variants[test.winner - 1]
        pending = states.readers(None, "pending")
        self._phase(winning, ledger.c.variant.is_(None), pending, done, summaries)
        return self._summary(summaries, recovered, requeued, requeued_failed, None)

    def _pick(
        self, test: subject_test.SubjectTest, pick: str, now: dt.datetime, states: VariantStates
    ) -> subject_test.SubjectTest:
        chosen = subject_test.refuse_another_pick(test, pick)
        if test.winner is None:
            test = subject_test.record_decision(
                self.store,
                test,
                winner=chosen,
                decided_by=subject_test.PICKED,
                figures=subject_test.measure(self.store, test, states),
                now=now,
            )
        subject_test.refuse_another_pick(test, pick)  # another run decided first
        return test

    def _phase(
        self, subject: str, only: Any, pending: int, done: int, summaries: list[SendSummary]
    ) -> SendSummary | None:
        """One phase's run, if it has anyone ``pending``."""
        if not pending:
            return None
        run = self.make_run(replace(self.content, subject=subject), only, done)
        summary = run.run(self.lease, size=self.size, retry_unknown=False)
        summaries.append(summary)
        return summary

    def _summary(
        self,
        summaries: list[SendSummary],
        recovered: int,
        requeued: int,
        requeued_failed: int,
        rest: tuple[dt.datetime, int] | None,
    ) -> SendSummary:
        """This run's phases as one summary; ``rest``: when the rest is due and how many
        readers it goes to, while it waits."""
        if not summaries:
            # Nobody pending in a phase that is due: the campaign's end is noted all the same.
            Ledger(self.store, self.campaign.id).finish(error=None)
        return SendSummary(
            campaign_id=self.campaign.id,
            slug=self.campaign.slug,
            provider=summaries[0].provider if summaries else self.campaign.provider,
            dry_run=False,
            sent=sum(summary.sent for summary in summaries),
            failed=sum(summary.failed for summary in summaries),
            skipped=sum(summary.skipped for summary in summaries),
            deferred=sum(summary.deferred for summary in summaries),
            unknown=sum(summary.unknown for summary in summaries),
            recovered_unknown=recovered,
            requeued_unknown=requeued,
            requeued_failed=requeued_failed,
            seconds=sum(summary.seconds for summary in summaries),
            totals=campaign_rows.state_counts(self.store, self.campaign.id),
            stopped=next((summary.stopped for summary in summaries if summary.stopped), None),
            rest_at=None if rest is None else rest[0],
            rest_pending=0 if rest is None else rest[1],
        )


def _handled(summary: SendSummary | None) -> int:
    if summary is None:
        return 0
    return summary.sent + summary.failed + summary.skipped + summary.deferred + summary.unknown
