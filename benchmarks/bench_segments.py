"""Segments benchmark: count a segment of two attribute conditions and one engagement
condition over --subscribers readers, on SQLite and PostgreSQL.

    python benchmarks/bench_segments.py [--subscribers 1000000] [--runs 5]
                                        [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

The readers are written with one bulk ``INSERT ... SELECT`` per table (a recursive CTE on
SQLite, ``generate_series`` on PostgreSQL), not through the importer: 90% active, a
country among five and a plan among three as attributes, one reader in seven with a
click in the last 30 days and one in twenty with one a year ago. Timed, median of
``--runs`` after a first run:

- **count**: ``SELECT count(*)`` of the active readers of the segment (what the send
  plan's audience counts);
- **subscribers count**: ``Store.counts(where)``, the whole ``newsletter subscribers
  count --segment`` (by status, and active readers by topic).

Target: each under 2 s. Prints a Markdown table with the load average at the start and end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the tests package too

from newsletter.segments.language import parse  # noqa: E402
from newsletter.segments.sql import segment_condition  # noqa: E402
from newsletter.send.campaign_rows import recipient_condition  # noqa: E402
from newsletter.store import Store, open_store_url  # noqa: E402
from newsletter.store.database import analyze  # noqa: E402
from newsletter.store.engagement import engagement_by_subscriber  # noqa: E402
from newsletter.store.schema import subscribers  # noqa: E402

SEGMENT = 'attributes.country == "GB" and attributes.plan == "pro" and clicked within 90 days'
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

SQLITE_READERS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count)
INSERT INTO subscribers (id, email, email_key, name, status, attributes, created_at,
    updated_at, source, opt_in_at, link_key, legacy_links, was_active)
SELECT i, 'r' || i || '@example.org', 'r' || i || '@example.org', '',
    CASE WHEN i % 10 = 0 THEN 'unsubscribed' ELSE 'active' END,
    json_object('country', CASE i % 5 WHEN 3 THEN 'GB' WHEN 1 THEN 'FR' WHEN 2 THEN 'DE'
        WHEN 0 THEN 'US' ELSE 'ES' END,
        'plan', CASE i % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'free' ELSE 'team' END),
    '2025-01-01 00:00:00.000000', '2025-01-01 00:00:00.000000', 'import:mailchimp.csv',
    '2025-01-01 00:00:00.000000', 'k' || i, 0, 1
FROM n
"""
SQLITE_CLICKS = """
INSERT INTO engagement_by_subscriber (campaign_id, event, subscriber_id, at)
SELECT 1 + id % 3, 'click', id,
    CASE WHEN id % 7 = 3 THEN '2026-11-20 10:00:00.000000' ELSE '2025-11-20 10:00:00.000000' END
FROM subscribers WHERE id % 7 = 3 OR id % 20 = 7
"""
POSTGRES_READERS = """
INSERT INTO subscribers (id, email, email_key, name, status, attributes, created_at,
    updated_at, source, opt_in_at, link_key, legacy_links, was_active)
SELECT i, 'r' || i || '@example.org', 'r' || i || '@example.org', '',
    CASE WHEN i % 10 = 0 THEN 'unsubscribed' ELSE 'active' END,
    json_build_object('country', CASE i % 5 WHEN 3 THEN 'GB' WHEN 1 THEN 'FR' WHEN 2 THEN 'DE'
        WHEN 0 THEN 'US' ELSE 'ES' END,
        'plan', CASE i % 3 WHEN 0 THEN 'pro' WHEN 1 THEN 'free' ELSE 'team' END),
    '2025-01-01Z', '2025-01-01Z', 'import:mailchimp.csv', '2025-01-01Z', 'k' || i, false, true
FROM generate_series(1, :count) AS i
"""
POSTGRES_CLICKS = """
INSERT INTO engagement_by_subscriber (campaign_id, event, subscriber_id, at)
SELECT 1 + id % 3, 'click', id,
    CASE WHEN id % 7 = 3 THEN timestamptz '2026-11-20 10:00Z' ELSE '2025-11-20 10:00Z' END
FROM subscribers WHERE id % 7 = 3 OR id % 20 = 7
"""


def build(store: Store, count: int) -> float:
    started = time.perf_counter()
    postgres = store.engine.dialect.name == "postgresql"
    with store.engine.begin() as connection:
        connection.execute(text(POSTGRES_READERS if postgres else SQLITE_READERS), {"count": count})
        if postgres:
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :count)"),
                {"count": count},
            )
        connection.execute(text(POSTGRES_CLICKS if postgres else SQLITE_CLICKS))
    analyze(store.engine, subscribers, engagement_by_subscriber)
    if not postgres:  # the planner's statistics on SQLite too (analyze() leaves it alone)
        with store.engine.begin() as connection:
            connection.execute(text("ANALYZE"))
    return time.perf_counter() - started


def count_segment(engine: Engine) -> int:
    where = segment_condition(parse(SEGMENT), now=NOW)
    with engine.connect() as connection:
        found = connection.scalar(
            select(func.count()).select_from(subscribers).where(recipient_condition([], where))
        )
    return found or 0


def median_time(work: Callable[[], object], runs: int) -> float:
    work()  # a first run: caches warm, plans made
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(url: str, label: str, count: int, runs: int) -> list[str]:
    store = open_store_url(url, ["research"])
    try:
        built = build(store, count)
        expected = sum(
            1 for i in range(1, count + 1) if i % 10 and i % 5 == 3 and i % 3 == 0 and i % 7 == 3
        )
        found = count_segment(store.engine)
        assert found == expected, (found, expected)
        where = segment_condition(parse(SEGMENT), now=NOW)
        plain = median_time(lambda: count_segment(store.engine), runs)
        whole = median_time(lambda: store.counts(where), runs)
    finally:
        store.close()
    return [f"| {label} | {count:,} | {found:,} | {plain:.2f} s | {whole:.2f} s | {built:.0f} s |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"load at start: {os.getloadavg()[0]:.1f}")
    print(f"segment: `{SEGMENT}`\n")
    print("| database | subscribers | in the segment | count | subscribers count | build |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'segments.db'}"
        for line in measure(url, "SQLite", args.subscribers, args.runs):
            print(line, flush=True)
    if args.postgres:
        sys.path.insert(0, str(ROOT / "tests"))
        from tests.store.databases import postgres_schema

        with postgres_schema(args.postgres) as schema_url:
            for line in measure(schema_url, "PostgreSQL", args.subscribers, args.runs):
                print(line, flush=True)
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
