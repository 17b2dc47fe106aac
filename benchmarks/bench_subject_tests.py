"""Subject test benchmark: starting a campaign of --subscribers readers with a subject
test (the snapshot, the seeded draw of a 20% sample and each sample reader's variant
written in the same transaction) against the same campaign without one, on SQLite and
PostgreSQL.

    python benchmarks/bench_subject_tests.py [--subscribers 1000000] [--runs 3]
                                             [--postgres postgresql+psycopg://...]

The readers are written as in benchmarks/bench_segments.py (one bulk ``INSERT ...
SELECT``). Each run starts a fresh campaign (another slug) and deletes it afterwards; the
median of ``--runs`` after a first run. Prints a Markdown table with the load average at
the start and end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Callable
from itertools import count
from pathlib import Path

from sqlalchemy import Connection, delete

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the tests package too

from benchmarks.bench_segments import build, median_time  # noqa: E402
from newsletter.config import AbSettings  # noqa: E402
from newsletter.send import campaign_rows  # noqa: E402
from newsletter.send.subject_test import assign  # noqa: E402
from newsletter.store import Store, open_store_url  # noqa: E402
from newsletter.store.schema import campaigns  # noqa: E402

SETTINGS = AbSettings.model_validate({"sample": "20%", "wait": "4h"})
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def start(store: Store, slugs: count[int], *, tested: bool) -> Callable[[], object]:
    def draw(connection: Connection, campaign_id: int) -> None:
        assign(connection, campaign_id, variants=("A", "B"), settings=SETTINGS, now=NOW)

    def run() -> None:
        slug = f"bench-{next(slugs)}"
        campaign_rows.start_campaign(
            store, slug=slug, issue_path="x.md", subject="A", topics=[], provider="outbox",
            after_snapshot=draw if tested else None,
        )  # fmt: skip
        with store.engine.begin() as connection:
            connection.execute(delete(campaigns).where(campaigns.c.slug == slug))

    return run


def measure(url: str, label: str, readers: int, runs: int) -> str:
    store = open_store_url(url, ["research"])
    try:
        build(store, readers)
        slugs = count()
        plain = median_time(start(store, slugs, tested=False), runs)
        tested = median_time(start(store, slugs, tested=True), runs)
    finally:
        store.close()
    return f"| {label} | {readers:,} | {plain:.2f} s | {tested:.2f} s | {tested - plain:+.2f} s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("NEWSLETTER_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"load at start: {os.getloadavg()[0]:.1f}\n")
    print("| database | subscribers | start, no test | start with a test | the draw |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'subject.db'}"
        print(measure(url, "SQLite", args.subscribers, args.runs), flush=True)
    if args.postgres:
        from tests.store.databases import postgres_schema

        with postgres_schema(args.postgres) as schema_url:
            print(measure(schema_url, "PostgreSQL", args.subscribers, args.runs), flush=True)
    print(f"\nload at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
