"""The report as text: a table for the terminal, JSON, or CSV (one row per issue)."""

from __future__ import annotations

import csv
import io
import json

from newsletter.reports.queries import IssueReport, Report

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


def _cells(issue: IssueReport) -> list[str]:
    return [
        issue.slug,
        f"{issue.started:%Y-%m-%d}",
        str(issue.recipients),
        str(issue.handed_over),
        str(issue.failed),
        str(issue.unknown),
        f"{issue.bounced_hard}/{issue.bounced_soft}",
        str(issue.blocked),
        str(issue.complained),
        f"{issue.unsubscribed} ({issue.unsubscribed_within_7_days})",
        _with_readers(issue.opens, issue.unique_opens, issue),
        _with_readers(issue.clicks, issue.unique_clicks, issue),
    ]


def _with_readers(total: int | None, readers: int | None, issue: IssueReport) -> str:
    """``12 (5)``: 12 in all, by 5 readers; ``12 (n/a)`` where readers were not told apart."""
    if total is None:
        return "-"
    if readers is None:
        return f"{total} (n/a)" if issue.unique_note else str(total)
    return f"{total} ({readers})"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def as_table(report: Report) -> str:
    """Per issue a row (one issue: its details and top links); then the list by week."""
    if not report.issues:
        return "No campaigns yet.\n"
    lines = _table([_HEADINGS, *map(_cells, report.issues)])
    if len(report.issues) == 1:
        lines += _details(report.issues[0])
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
                    *map(str, (step.versions, step.recipients, step.handed_over, step.failed)),
                    *map(str, (step.unknown, step.pending, step.bounced, step.complained)),
                    str(step.unsubscribed),
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
                    week.week.isoformat(),
                    *map(str, (week.active, week.pending, week.unsubscribed)),
                    *map(str, (week.bounced, week.complained, week.joined)),
                ]
                for week in report.weeks
            ]
        )
    if report.sources:
        lines.append("")
        lines.append(
            "Subscribers by source: " + ", ".join(f"{s} {n}" for s, n in report.sources.items())
        )
    return "\n".join(lines) + "\n"


def _details(issue: IssueReport) -> list[str]:
    lines = ["", f"{issue.slug}: {issue.subject}", f"  provider {issue.provider}"]
    if issue.pending or issue.skipped:
        lines.append(f"  still pending {issue.pending}, skipped {issue.skipped}")
    if not issue.tracked:
        lines.append("  opens and clicks: not tracked (tracking.clicks or sendgrid.tracking)")
        return lines
    if issue.unique_note:
        lines.append(f"  opens {issue.opens}, clicks {issue.clicks}")
        lines.append(f"  readers who opened, who clicked: {issue.unique_note}")
    else:
        lines.append(
            f"  opens {issue.opens} ({issue.unique_opens} readers), "
            f"clicks {issue.clicks} ({issue.unique_clicks} readers)"
        )
    for link in issue.top_links:
        lines.append(f"  {link.clicks:>6}  {link.url}")
    return lines


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2) + "\n"


def as_csv(report: Report) -> str:
    """One row per issue, every count in its own column (for a spreadsheet)."""
    out = io.StringIO()
    fields = [
        "issue", "subject", "campaign_id", "started", "provider", "recipients", "handed_over",
        "failed", "unknown", "pending", "skipped", "bounced_hard", "bounced_soft", "blocked",
        "complained", "unsubscribed", "unsubscribed_within_7_days", "opens", "clicks",
        "unique_opens", "unique_clicks", "top_links",
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
        writer.writerow({name: _spreadsheet_safe(data.get(name)) for name in fields})
    return out.getvalue()


def _spreadsheet_safe(value: object) -> object:
    # A subject is the editor's text, but a cell starting with = still runs as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
