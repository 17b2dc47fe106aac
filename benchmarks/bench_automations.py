"""Automations benchmark: run-due with nobody due, and due welcome mails against a campaign.

    python benchmarks/bench_automations.py [--idle 100000] [--due 10000] [--runs 3]
                                           [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

- **Nobody due**: ``--idle`` subscribers in a 3-step sequence (after 0 days, 3 days, 1
  week), all entered within the last two days and all already sent the first step (its
  campaign's ledger holds them), so no step is due: the time of one whole
  ``run_due_steps`` (reading the sequence, the due queries, opening the store), median
  of ``--runs`` after a first run. Target: under a second.
- **Due welcome mails**: ``--due`` readers who have just entered, their welcome step
  sent by ``run_due_steps`` to the local SendGrid stand-in (tests/fakes/sendgrid.py, in
  its own process), against a campaign of the seed issue to as many subscribers on the
  same stand-in, the two taken in turns in the same run; medians. Target: the welcome
  mails within 1.5x the campaign's time.

Prints a Markdown table, with the load average at the start and end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, insert, literal, select, update

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the benchmarks and tests packages too

from benchmarks.bench_send import API_KEY, make_project, populate, send, server  # noqa: E402
from newsletter.automations.sequences import read_sequence  # noqa: E402
from newsletter.automations.step_campaigns import StepVersion, version_campaign  # noqa: E402
from newsletter.automations.steps import run_due_steps  # noqa: E402
from newsletter.config import Config  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.store.automation_tables import automation_entries, automation_steps  # noqa: E402
from newsletter.store.schema import campaigns, ledger, subscribers  # noqa: E402

STEP = """---
title: "{title}"
preheader: What to expect from us, and where to start reading.
date: 2026-12-01
after: {after}
topics: []
---

Hello, and thank you: {title}. We write about breastfeeding research every week.

[Read the latest issue](https://example.org/archive/){{.button}}
"""


def write_steps(config: Config, steps: list[tuple[str, str]]) -> None:
    folder = config.root / "automations/welcome"
    folder.mkdir(parents=True, exist_ok=True)
    for name, after in steps:
        title = name.partition("-")[2].replace("-", " ").capitalize()
        path = folder / f"{name}.md"
        path.write_text(STEP.format(title=title, after=after), "utf-8")
        long_ago = time.time() - 30 * 86400  # the steps are older than every reader's entry
        os.utime(path, (long_ago, long_ago))


def sequence_project(work: Path, database_url: str | None, **settings: object) -> Config:
    folder = Path(tempfile.mkdtemp(dir=work))
    database = {"database_url": database_url} if database_url else {}
    return make_project(
        folder,
        automations={"welcome": {"path": "automations/welcome"}},
        **settings,
        **database,
    )


def enter_everyone(config: Config, since: dt.timedelta) -> None:
    """Every subscriber entered, spread evenly over the last ``since``."""
    store = open_store(config)
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as connection:
        count = connection.scalar(select(func.count()).select_from(subscribers)) or 1
        ids = connection.scalars(select(subscribers.c.id).order_by(subscribers.c.id)).all()
        rows = [
            {"subscriber_id": id_, "entered_at": now - since * (1 - n / count), "how": "added"}
            for n, id_ in enumerate(ids)
        ]
        for start in range(0, len(rows), 20_000):
            connection.execute(insert(automation_entries), rows[start : start + 20_000])
        connection.execute(update(subscribers).values(opt_in_at=now - since - since))
    store.close()


def idle_figure(work: Path, count: int, runs: int, database_url: str | None) -> list[float]:
    config = sequence_project(work, database_url)
    write_steps(config, [("01-thanks", "0 days"), ("02-best", "3 days"), ("03-how", "1 week")])
    populate(config, count)
    enter_everyone(config, dt.timedelta(days=2))
    # The steady state: everyone already had the first step (as its campaign records).
    sequence = read_sequence(config, "welcome")
    store = open_store(config)
    first = sequence.steps[0]
    campaign = version_campaign(store, StepVersion(config, first))
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as connection:
        connection.execute(
            insert(ledger).from_select(
                ["campaign_id", "subscriber_id", "state", "attempts", "updated_at", "sent_at"],
                select(
                    literal(campaign.id), automation_entries.c.subscriber_id, literal("sent"),
                    literal(1), literal(now, type_=ledger.c.updated_at.type),
                    literal(now, type_=ledger.c.sent_at.type),
                ),
            )
        )  # fmt: skip
        connection.execute(
            update(campaigns).where(campaigns.c.id == campaign.id).values(finished_at=now)
        )
        for step in sequence.steps:  # seen by run-due since before everyone entered
            connection.execute(
                insert(automation_steps).values(
                    automation="welcome", step=step.key, started_at=now - dt.timedelta(days=30),
                    through=now - step.after,
                )
            )  # fmt: skip
    store.close()
    assert run_due_steps(config) == []  # nobody is due
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        results = run_due_steps(config)
        times.append(time.perf_counter() - started)
        assert results == []
    shutil.rmtree(config.root)
    return times


def welcome_run(work: Path, count: int, url: str, database_url: str | None) -> float:
    config = sequence_project(
        work, database_url, provider="sendgrid", sendgrid={"api_host": url, "batch_size": 1000}
    )
    write_steps(config, [("01-thanks", "0 days")])
    populate(config, count)
    enter_everyone(config, dt.timedelta(minutes=1))
    started = time.perf_counter()
    [result] = run_due_steps(config)
    seconds = time.perf_counter() - started
    assert result.outcome == "sent", result.message
    assert f"sent {count}," in result.message, result.message
    shutil.rmtree(config.root)
    return seconds


def campaign_run(work: Path, count: int, url: str, database_url: str | None) -> float:
    config = sequence_project(
        work, database_url, provider="sendgrid", sendgrid={"api_host": url, "batch_size": 1000}
    )
    populate(config, count)
    sent, seconds = send(config)
    assert sent == count
    shutil.rmtree(config.root)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="also on this PostgreSQL database (a fresh schema)")
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "benchmark-secret-key-0123456789abcdef")
    os.environ["SENDGRID_API_KEY"] = API_KEY
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    load_before = os.getloadavg()
    rows = []
    engines: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres:
        engines.append(("PostgreSQL", args.postgres))
    with tempfile.TemporaryDirectory(prefix="bench-automations-") as folder:
        work = Path(folder)
        for engine, url in engines:
            with _fresh(url) as database_url:
                idle = idle_figure(work, args.idle, args.runs, database_url)
            rows.append(
                f"| run-due, {args.idle:,} in a 3-step sequence, none due ({engine}) | "
                f"{statistics.median(idle):.3f} s (runs: {', '.join(f'{t:.3f}' for t in idle)}) "
                "| < 1 s |"
            )
            with server("tests.fakes.sendgrid") as sendgrid_url:
                welcome, campaign = [], []
                for _ in range(args.runs):
                    with _fresh(url) as database_url:
                        campaign.append(campaign_run(work, args.due, sendgrid_url, database_url))
                    with _fresh(url) as database_url:
                        welcome.append(welcome_run(work, args.due, sendgrid_url, database_url))
            ratio = statistics.median(welcome) / statistics.median(campaign)
            rows.append(
                f"| {args.due:,} due welcome mails / a {args.due:,}-recipient campaign, "
                f"SendGrid stand-in ({engine}) | {statistics.median(welcome):.2f} s / "
                f"{statistics.median(campaign):.2f} s = {ratio:.2f}x | within 1.5x |"
            )
    load_after = os.getloadavg()
    print("| measure | figure | target |")
    print("| --- | --- | --- |")
    print("\n".join(rows))
    print(
        f"\nload average at start {load_before[0]:.1f}, at end {load_after[0]:.1f} "
        f"({os.cpu_count()} cores); Python {sys.version.split()[0]}"
    )


class _fresh:
    """A fresh PostgreSQL schema per project (None: each project's own SQLite file)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._context: object = None

    def __enter__(self) -> str | None:
        if self.url is None:
            return None
        from tests.store.databases import postgres_schema

        self._context = postgres_schema(self.url)
        return self._context.__enter__()  # type: ignore[attr-defined, no-any-return]

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
