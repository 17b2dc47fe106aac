"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, no fonts.

It opens offline, prints, and can be mailed to a colleague as a single file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2

from newsletter.reports import charts
from newsletter.reports.figures import IssueReport, Report
from newsletter.reports.forms import Forms

TEMPLATES = Path(__file__).parent / "templates"
_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,  # subjects, URLs and sources are the editor's or readers' text
    undefined=jinja2.StrictUndefined,
)


def as_html(report: Report, *, title: str, generated: dt.datetime, language: str = "en") -> str:
    """The page, its dates and counts in ``language``'s form (:class:`Forms`)."""
    forms = Forms(language)
    issues = report.issues
    labels = [issue.subject for issue in issues]  # shortened under the bars
    tips = [f"{issue.subject} ({issue.slug})" for issue in issues]  # in full, as tooltips
    context = {
        "title": title,
        "language": language,
        "generated": f"{forms.date(generated)} {generated:%H:%M} UTC",
        "forms": forms,
        "n": forms.count,
        "report": report,
        "funnels": [(issue, _funnel(issue, forms)) for issue in issues[-1:] if len(issues) == 1]
        or [(issue, _funnel(issue, forms)) for issue in issues[-3:]],
        "growth": charts.lines(
            "The list by week",
            [forms.chart_week(week.week) for week in report.weeks],
            [
                ("active", [week.active for week in report.weeks]),
                ("pending", [week.pending for week in report.weeks]),
                ("unsubscribed", [week.unsubscribed for week in report.weeks]),
                ("bounced", [week.bounced for week in report.weeks]),
                ("complained", [week.complained for week in report.weeks]),
            ],
            count=forms.count,
        )
        if report.weeks
        else None,
        "unsubscribes": charts.bars(
            "Unsubscribes per issue",
            labels,
            [
                ("through the issue", [issue.unsubscribed for issue in issues]),
                (
                    "any way, within 7 days",
                    [issue.unsubscribed_within_7_days for issue in issues],
                ),
            ],
            stacked=False,
            tips=tips,
            count=forms.count,
        )
        if issues
        else None,
        "outcomes": charts.bars(
            "Deliveries per issue",
            labels,
            [
                ("handed over", [issue.handed_over for issue in issues]),
                ("failed", [issue.failed for issue in issues]),
                ("unknown", [issue.unknown for issue in issues]),
            ],
            tips=tips,
            count=forms.count,
        )
        if issues
        else None,
    }
    return _ENVIRONMENT.get_template("report.html.j2").render(context)


def _funnel(issue: IssueReport, forms: Forms) -> str:
    steps = [
        ("Recipients", issue.recipients),
        ("Handed over", issue.handed_over),
        ("Not bounced", max(issue.handed_over - issue.bounced_hard - issue.bounced_soft, 0)),
    ]
    if issue.opens:
        steps.append(("Opens", issue.opens))
    if issue.clicks is not None:
        steps.append(("Clicks", issue.clicks))
    return charts.funnel(f"Funnel of {issue.slug}", steps, count=forms.count)
