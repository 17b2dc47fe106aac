"""The report as text: a table for the terminal, JSON, or CSV (one row per issue)."""

from __future__ import annotations

import csv
import io
import json

from newsletter.reports.figures import IssueReport, Report
from newsletter.reports.forms import Forms
from newsletter.reports.subject_tests import table_lines

# The per-issue columns of the table, in the order of _cells().
_HEADINGS = [
    "ISSUE",
    "SENT ON",
    "RECIPIENTS",
    "HANDED OVER",
    "FAILED",
    "UNKNOWN",
    "BOUNCED H/S",
    "BLOCKED",
    "COMPLAINED",
    "UNSUB (7 D)",
    "OPENS (READERS)",
    "CLICKS (READERS)",
]


def _cells(issue: IssueReport, forms: Forms) -> list[str]:
    n = forms.count
    return [
        issue.slug,
        forms.date(issue.started),
        n(issue.recipients),
        n(issue.handed_over),
        n(issue.failed),
        n(issue.unknown),
        f"{n(issue.bounced_hard)}/{n(issue.bounced_soft)}",
        n(issue.blocked),
        n(issue.complained),
        f"{n(issue.unsubscribed)} ({n(issue.unsubscribed_within_7_days)})",
        _with_readers(issue.opens, issue.unique_opens, issue, forms),
        _with_readers(issue.clicks, issue.unique_clicks, issue, forms),
    ]


def _with_readers(total: int | None, readers: int | None, issue: IssueReport, forms: Forms) -> str:
    """``12 (5)``: 12 in all, by 5 readers; ``12 (n/a)`` where readers were not told apart."""
    if total is None:
        return "-"
    if readers is None:
        return f"{forms.count(total)} (n/a)" if issue.unique_note else forms.count(total)
    return f"{forms.count(total)} ({forms.count(readers)})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def as_table(report: Report, *, language: str = "en") -> str:
    """Per issue a row (one issue: its details and top links); then the list by week.
    Dates and counts in ``language``'s form (:class:`Forms`), the labels English."""
    if not report.issues:
        return "No campaigns yet.\n"
    forms = Forms(language)
    n = forms.count
    lines = _table([_HEADINGS, *(_cells(issue, forms) for issue in report.issues)])
    if len(report.issues) == 1:
        lines += _details(report.issues[0], forms)
    else:
        tested = [issue for issue in report.issues if issue.subject_test is not None]
        if tested:
            lines += ["", "Subject tests:"]
            for issue in tested:
                lines += [f"{issue.slug}:", *table_lines(issue)]
    lines.append("")
    lines.append("Unsubscribed: through the issue's own links (any way within 7 days after it).")
    if report.automations:
        lines.append("")
        lines.append("Automations, per step (every version of its file):")
        lines += _table(
            [["STEP", "VERSIONS", "RECIPIENTS", "HANDED OVER", "FAILED", "UNKNOWN", "PENDING",
              "BOUNCED", "COMPLAINED", "UNSUB"]]
            + [
                [
                    f"{step.automation}/{step.step}",
                    *map(n, (step.versions, step.recipients, step.handed_over, step.failed)),
                    *map(n, (step.unknown, step.pending, step.bounced, step.complained)),
                    n(step.unsubscribed),
                ]
                for step in report.automations
            ]
        )  # fmt: skip
    if report.weeks:
        lines.append("")
        lines.append("The list by week:")
        lines += _table(
            [["WEEK OF", "ACTIVE", "PENDING", "UNSUBSCRIBED", "BOUNCED", "COMPLAINED", "JOINED"]]
            + [
                [
                    forms.week(week.week),
                    *map(n, (week.active, week.pending, week.unsubscribed)),
                    *map(n, (week.bounced, week.complained, week.joined)),
                ]
                for week in report.weeks
            ]
        )
    if report.sources:
        lines.append("")
        lines.append(
            "Subscribers by source: "
            + ", ".join(f"{source} {n(number)}" for source, number in report.sources.items())
        )
    return "\n".join(lines) + "\n"


def _details(issue: IssueReport, forms: Forms) -> list[str]:
    n = forms.count
    lines = ["", f"{issue.slug}: {issue.subject}", f"  provider {issue.provider}"]
    if issue.pending or issue.skipped:
        lines.append(f"  still pending {n(issue.pending)}, skipped {n(issue.skipped)}")
    lines += table_lines(issue)
    if not issue.tracked:
        lines.append("  opens and clicks: not tracked (tracking.clicks or <provider>.tracking)")
        return lines
    if issue.unique_note:
        lines.append(f"  opens {n(issue.opens or 0)}, clicks {n(issue.clicks or 0)}")
        lines.append(f"  readers who opened, who clicked: {issue.unique_note}")
    else:
        lines.append(
            f"  opens {n(issue.opens or 0)} ({n(issue.unique_opens or 0)} readers), "
            f"clicks {n(issue.clicks or 0)} ({n(issue.unique_clicks or 0)} readers)"
        )
    for link in issue.top_links:
        lines.append(f"  {n(link.clicks):>6}  {link.url}")
    return lines


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2) + "\n"


def as_csv(report: Report) -> str:
    """One row per issue, every count in its own column (for a spreadsheet); then one
    row per automation step, its versions' campaigns (rows above) summed, ``versions``
    saying how many (empty on an issue's row)."""
    out = io.StringIO()
    fields = [
        "issue", "subject", "campaign_id", "started", "provider", "recipients", "handed_over",
        "failed", "unknown", "pending", "skipped", "bounced_hard", "bounced_soft", "blocked",
        "complained", "unsubscribed", "unsubscribed_within_7_days", "opens", "clicks",
        "unique_opens", "unique_clicks", "top_links", "subject_test", "versions",
    ]  # fmt: skip
    writer = csv.DictWriter(out, fields, lineterminator="\n")
    writer.writeheader()
    for issue in report.issues:
        data = issue.as_dict()
        data["issue"] = data.pop("slug")
        if issue.unique_note:  # tracked, but readers were not told apart: not a zero
            data["unique_opens"] = data["unique_clicks"] = "n/a"
        # One cell: "clicks URL" per link, most clicked first.
        data["top_links"] = " | ".join(f"{link.clicks} {link.url}" for link in issue.top_links)
        # One cell: each subject's rate, the winner and why ("" without a test).
        data["subject_test"] = issue.subject_test.summary() if issue.subject_test else ""
        writer.writerow({name: _spreadsheet_safe(data.get(name)) for name in fields})
    for step in report.automations:
        data = step.as_dict()
        data["issue"] = f"{data.pop('automation')}/{data.pop('step')}"
        writer.writerow({name: _spreadsheet_safe(data.get(name)) for name in fields})
    return out.getvalue()


def _spreadsheet_safe(value: object) -> object:
    # A subject is the editor's text, but a cell starting with = still runs as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
