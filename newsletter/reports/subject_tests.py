"""Each subject test in the report: every subject's sample, how many of its readers
clicked (or opened) and at what rate, the rest, and the winner with the reason
(docs/subject-tests.md). The decision itself is :mod:`newsletter.send.subject_test`'s;
here it is only read back, with the figures as they stand now."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from newsletter.reports.figures import IssueReport
from newsletter.send import subject_test
from newsletter.store import Store
from newsletter.store.subject_tests import count_by_variant


@dataclass(frozen=True)
class VariantReport:
    letter: str
    subject: str
    sample: int  # readers drawn for it
    handed_over: int  # of them, the provider accepted (ledger sent)
    readers: int  # of them, who clicked (opened): each once
    rate: float  # readers / handed over, in percent

    def line(self, verb: str) -> str:
        return (
            f"{self.letter}  {self.rate:.1f}% {verb} ({self.readers} of {self.handed_over} "
            f"handed over, {self.sample} in the sample): {self.subject}"
        )


@dataclass(frozen=True)
class SubjectTestReport:
    metric: str  # clicks or opens
    sample_percent: str
    variants: list[VariantReport]
    rest: int  # readers who get (or got) the winner
    rest_handed_over: int
    rest_at: dt.datetime
    winner: str | None  # its letter, once decided
    decided_by: str | None  # measured, tie, too little data, picked
    why: str  # the decision in words, or when it comes

    @property
    def verb(self) -> str:
        return "clicked" if self.metric == "clicks" else "opened"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rest_at"] = self.rest_at.isoformat()
        return data

    def summary(self) -> str:
        """One cell (CSV): each subject's rate, then the winner and why."""
        rates = " | ".join(
            f"{v.letter} {v.rate:.1f}% ({v.readers} of {v.handed_over})" for v in self.variants
        )
        return f"{rates} | winner: {self.why}"


def add_subject_tests(store: Store, issues: Sequence[IssueReport]) -> None:
    """Fill in ``subject_test`` of each issue whose campaign tested subjects."""
    for issue in issues:
        test = subject_test.find_test(store, issue.campaign_id)
        if test is not None:
            issue.subject_test = _report(store, test)


def _report(store: Store, test: subject_test.SubjectTest) -> SubjectTestReport:
    with store.engine.connect() as connection:
        states = count_by_variant(connection, test.campaign_id)
    figures = subject_test.measure(store, test, states)
    variants = [
        VariantReport(
            letter=subject_test.letter(number),
            subject=subject,
            sample=states.readers(number),
            handed_over=handed,
            readers=readers,
            rate=float(subject_test.rate(readers, handed)) * 100,
        )
        for number, (subject, (readers, handed)) in enumerate(
            zip(test.variants, figures, strict=True), 1
        )
    ]
    return SubjectTestReport(
        metric=test.metric,
        sample_percent=test.sample_percent,
        variants=variants,
        rest=states.readers(None),
        rest_handed_over=states.readers(None, "sent"),
        rest_at=test.rest_at,
        winner=None if test.winner is None else subject_test.letter(test.winner),
        decided_by=test.decided_by,
        why=subject_test.why(test),
    )


def table_lines(issue: IssueReport) -> list[str]:
    """The subject test under an issue in the terminal's report."""
    test: SubjectTestReport | None = issue.subject_test
    if test is None:
        return []
    lines = [f"  subject test by {test.metric}, sample {test.sample_percent}%:"]
    lines += [f"    {variant.line(test.verb)}" for variant in test.variants]
    lines.append(f"    rest: {test.rest} ({test.rest_handed_over} handed over)")
    lines.append(f"    winner: {test.why}")
    return lines
