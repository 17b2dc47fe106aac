"""``newsletter report``: how each issue did and how the list grows.

:func:`make_report` reads it from the store (:mod:`.queries`; the list as a whole:
:mod:`.list_counts`) into the figures of :mod:`.figures`; :mod:`.formats` writes it as a
table, JSON or CSV, and :mod:`.html` as one self-contained page with inline SVG charts
(:mod:`.charts`); :mod:`.subject_tests` adds each subject test's figures.
"""

from __future__ import annotations

from newsletter.config import Config
from newsletter.errors import NewsletterError
from newsletter.reports.automations import step_reports
from newsletter.reports.figures import IssueReport, ListWeek, Report
from newsletter.reports.queries import build_report
from newsletter.reports.subject_tests import add_subject_tests
from newsletter.send.status import slug_of
from newsletter.store import open_store

__all__ = ["IssueReport", "ListWeek", "Report", "make_report"]


def make_report(config: Config, issue: str | None = None) -> Report:
    """The report over every campaign, or over ``issue``'s (a file or its slug)."""
    tracked_by = config.provider_tracking
    tracking = bool(tracked_by) or config.tracking.clicks or config.tracking.opens
    store = open_store(config)
    try:
        slugs = None if issue is None else [slug_of(issue)]
        report = build_report(
            store,
            slugs=slugs,
            tracking=tracking,
            per_subscriber=config.tracking.per_subscriber,
            tracked_by=tracked_by,
        )
        report.automations = step_reports(store, report.issues)
        add_subject_tests(store, report.issues)
    finally:
        store.close()
    if issue is not None and not report.issues:
        raise NewsletterError(f"{issue}: no campaign for it yet; 'newsletter status' lists them")
    return report
