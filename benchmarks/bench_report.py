"""Report benchmark: ``newsletter report`` over many campaigns and a big ledger.

    python benchmarks/bench_report.py [--campaigns 100] [--subscribers 10000] [--runs 3]
                                      [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Builds a fresh SQLite file (or a throwaway schema of the ``--postgres`` database) with
``--subscribers`` subscribers and ``--campaigns`` campaigns, each snapshotted to every
subscriber: campaigns x subscribers ledger rows (100 x 10,000 = 1,000,000), with some
failed and unknown rows, 2% unsubscribed through a campaign, some complaints, soft
bounces, first-party clicks, and per-reader opens and clicks (migration 9). Then times
:func:`newsletter.reports.make_report` (the queries) and the table and HTML output, and
prints the median of ``--runs``.

Target (issue 15): the report over 100 campaigns and 1,000,000 ledger rows in at most
2 s, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import case, func, insert, literal, select, update

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 2.0


def populate(database_url: str, campaigns: int, subscribers: int) -> int:
    from newsletter.store import open_store_url
    from newsletter.store.engagement import (
        engagement_by_subscriber,
        provider_link_clicks,
        url_hash,
    )
    from newsletter.store.returns import soft_bounces
    from newsletter.store.scheduling import campaign_links
    from newsletter.store.schema import campaigns as campaigns_table
    from newsletter.store.schema import ledger, subscriber_events
    from newsletter.store.schema import subscribers as subscribers_table

    store = open_store_url(database_url, ("research",))
    start = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    try:
        with store.engine.begin() as connection:
            connection.execute(
                insert(subscribers_table),
                [
                    {
                        "email": f"reader{n}@example.org",
                        "email_key": f"reader{n}@example.org",
                        "name": f"Reader {n}",
                        "status": "active",
                        "attributes": {},
                        "created_at": start - dt.timedelta(days=7 * (n % 20)),
                        "updated_at": start,
                        "source": ("web", "import:list.csv", "cli")[n % 3],
                        "opt_in_at": start,
                    }
                    for n in range(subscribers)
                ],
            )
            connection.execute(
                insert(campaigns_table),
                [
                    {
                        "slug": f"issue-{n:03d}",
                        "issue_path": f"issues/issue-{n:03d}.md",
                        "subject": f"Issue {n}",
                        "topics": [],
                        "provider": "smtp",
                        "recipients": subscribers,
                        "created_at": start + dt.timedelta(days=7 * n),
                    }
                    for n in range(campaigns)
                ],
            )
            sid = subscribers_table.c.id
            state = case(
                (sid % 97 == 0, literal("failed")),
                (sid % 211 == 0, literal("unknown")),
                else_=literal("sent"),
            )
            snapshot = select(
                campaigns_table.c.id,
                sid,
                state,
                literal(1),
                literal(start, type_=ledger.c.updated_at.type),
            ).select_from(campaigns_table.join(subscribers_table, literal(True)))
            connection.execute(
                insert(ledger).from_select(
                    ["campaign_id", "subscriber_id", "state", "attempts", "updated_at"], snapshot
                )
            )
            # 2% unsubscribed, each through one campaign, a few days after it.
            for n in range(0, subscribers, 50):
                campaign = n % campaigns + 1
                connection.execute(
                    update(subscribers_table)
                    .where(sid == n + 1)
                    .values(
                        status="unsubscribed",
                        unsubscribed_at=start + dt.timedelta(days=7 * (campaign - 1) + 2),
                        unsubscribe_campaign_id=campaign,
                    )
                )
            complained = [n + 1 for n in range(7, subscribers, 997)]
            connection.execute(
                update(subscribers_table).where(sid.in_(complained)).values(status="complained")
            )
            connection.execute(
                insert(subscriber_events),
                [
                    {
                        "subscriber_id": who,
                        "at": start + dt.timedelta(days=7 * (who % campaigns) + 1),
                        "event": "complained",
                        "source": "mailbox",
                        "detail": {},
                    }
                    for who in complained
                ],
            )
            connection.execute(
                insert(soft_bounces),
                [
                    {"subscriber_id": n + 1, "campaign_id": n % campaigns + 1, "at": start}
                    for n in range(3, subscribers, 101)
                ],
            )
            connection.execute(
                insert(campaign_links),
                [
                    {"campaign_id": c + 1, "link": link, "url": f"https://example.org/{c}/{link}",
                     "clicks": (c * 7 + link * 13) % 500}
                    for c in range(campaigns)
                    for link in range(8)
                ],
            )  # fmt: skip
            # Per-reader opens (a third of the recipients) and clicks (one in twenty), as
            # the SendGrid webhook or the per-reader pixel keeps them; SendGrid's clicks
            # per URL.
            for event, every in (("open", 3), ("click", 20)):
                readers = select(
                    ledger.c.campaign_id,
                    literal(event),
                    ledger.c.subscriber_id,
                    literal(start, type_=engagement_by_subscriber.c.at.type),
                ).where(ledger.c.subscriber_id % every == 0)
                connection.execute(
                    insert(engagement_by_subscriber).from_select(
                        ["campaign_id", "event", "subscriber_id", "at"], readers
                    )
                )
            connection.execute(
                insert(provider_link_clicks),
                [
                    {"campaign_id": c + 1, "url_hash": url_hash(f"https://example.org/s/{link}"),
                     "url": f"https://example.org/s/{link}", "clicks": (c * 11 + link) % 300}
                    for c in range(campaigns)
                    for link in range(8)
                ],
            )  # fmt: skip
            rows = connection.scalar(select(func.count()).select_from(ledger))
        if store.engine.dialect.name == "postgresql":
            with store.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE")
    finally:
        store.close()
    return rows or 0


def measure(project: Path, database_url: str, runs: int) -> dict[str, list[float]]:
    import os

    from newsletter.config import load_config
    from newsletter.reports import make_report
    from newsletter.reports.formats import as_table
    from newsletter.reports.html import as_html

    os.environ["NEWSLETTER_DATABASE_URL"] = database_url
    config = load_config(project / "newsletter.yaml")
    timings: dict[str, list[float]] = {"queries": [], "table": [], "html": []}
    for run in range(runs + 1):  # run 0 warms the caches and is not counted
        started = time.perf_counter()
        report = make_report(config)
        queried = time.perf_counter()
        as_table(report)
        tabled = time.perf_counter()
        as_html(report, title="bench", generated=dt.datetime.now(dt.UTC))
        done = time.perf_counter()
        if run:
            timings["queries"].append(queried - started)
            timings["table"].append(tabled - started)
            timings["html"].append(done - queried + (queried - started))
        print(
            f"run {run}: queries {queried - started:.2f} s, html {done - queried:.2f} s",
            file=sys.stderr,
        )
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="Use this PostgreSQL database, not SQLite.")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        project = folder / "project"
        project.mkdir()
        shutil.copy2(ROOT / "newsletter.yaml", project)
        if options.postgres:
            sys.path.insert(0, str(ROOT))  # the test suite's throwaway schemas
            from tests.store.databases import postgres_schema

            with postgres_schema(options.postgres) as database_url:
                run(options, project, database_url)
        else:
            run(options, project, f"sqlite:///{folder / 'newsletter.db'}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(options: argparse.Namespace, project: Path, database_url: str) -> None:
    started = time.perf_counter()
    rows = populate(database_url, options.campaigns, options.subscribers)
    print(
        f"populated {rows:,} ledger rows in {time.perf_counter() - started:.1f} s", file=sys.stderr
    )
    timings = measure(project, database_url, options.runs)
    database = "PostgreSQL" if options.postgres else "SQLite"
    queries = statistics.median(timings["queries"])
    html = statistics.median(timings["html"])
    print(
        f"\n| database | campaigns | ledger rows | report (queries + table) s | "
        f"report with HTML s | target <= {TARGET_SECONDS:g} s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {database} | {options.campaigns} | {rows:,} | "
        f"{statistics.median(timings['table']):.2f} | {html:.2f} | "
        f"{'met' if max(queries, html) <= TARGET_SECONDS else 'NOT met'} |"
    )


if __name__ == "__main__":
    main()
