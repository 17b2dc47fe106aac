"""Sending benchmark: SendGrid throughput, memory at a million, SMTP connection reuse.

    python benchmarks/bench_send.py [--subscribers 100000] [--runs 3]
                                    [--memory 1000000] [--smtp 2000]
                                    [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Everything runs end to end through the library (plan, snapshot, claims, ledger
writes, personalisation, hand-off) against local servers in *other processes*, so
they do not share the sender's interpreter lock: the fake SendGrid from
tests/fakes/sendgrid.py and an aiosmtpd sink. Prints a Markdown table of medians;
each figure has its baseline beside it, measured the same way in the same run:

- SendGrid: batches of 1,000 personalizations against one request per recipient
  (batch_size 1, on a smaller list: its rate does not depend on the list's size);
- memory: the streamed campaign against materialising the recipients in a list;
- SMTP: connections kept open and reused against one connection per message, and
  the sink's own ceiling (bare smtplib sending one prepared message over and over);
  DKIM-signed sending (smtp.dkim, RSA 2048) against unsigned, runs taken in turns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert

from newsletter.config import Config, load_config
from newsletter.deliverability.dkim_keys import generate_key, write_private_key
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.send.copies import RecipientBuilder, campaign_content
from newsletter.send.ledger_batches import LedgerRecipient
from newsletter.send.plan import plan_send
from newsletter.send.providers import PROVIDERS, local_message
from newsletter.send.providers.smtp import SmtpProvider
from newsletter.send.sending import send_campaign
from newsletter.store import open_store
from newsletter.store.schema import new_link_key, subscriber_topics, subscribers
from newsletter.tokens import Links, Signer

ROOT = Path(__file__).resolve().parent.parent
SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
API_KEY = "SG.fake-key-for-tests"  # what tests/fakes/sendgrid.py expects
CHUNK = 20_000


class OneConnectionPerMessage(SmtpProvider):
    """The SMTP provider with connection reuse off: the baseline."""

    def __init__(self, config: Config) -> None:
        super().__init__(config, reuse_connections=False)


PROVIDERS["smtp-per-message"] = f"{__name__}:OneConnectionPerMessage"


# -- fixtures: a project folder, a database of n subscribers, the servers ----------


def make_project(folder: Path, **settings: Any) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "newsletter.yaml", folder)
    shutil.copytree(ROOT / "issues", folder / "issues", dirs_exist_ok=True)
    data = yaml.safe_load((folder / "newsletter.yaml").read_text(encoding="utf-8"))
    data.update(settings)
    (folder / "newsletter.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    config = load_config(folder / "newsletter.yaml")
    # The issue checked once, as `newsletter check` (or build, or preview) does before a
    # send: its images are resized and cached in build/.cache, a one-off per issue
    # (some 80 ms here) that would otherwise count against every run's recipients/s.
    compile_issue(read_issue(config.root / SEED, topics=config.topic_ids), config)
    return config


def populate(config: Config, count: int) -> None:
    """``count`` active subscribers of the seed issue's topic, inserted in bulk; their
    addresses are new to the fake server (which counts every address it ever saw).

    Each row has the columns an import writes (``store.bulk``): its own link key, no
    legacy links, consent proven. (The key was also filled before, by the column's
    default, one call per row; the send takes the same path either way.)"""
    prefix = config.root.name
    store = open_store(config)
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as connection:
        for start in range(0, count, CHUNK):
            rows = [
                {
                    "id": n + 1,
                    "email": f"{prefix}.{n}@example.org",
                    "email_key": f"{prefix}.{n}@example.org",
                    "name": f"Reader {n}",
                    "status": "active",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                    "source": "benchmark",
                    "opt_in_at": now,
                    "link_key": new_link_key(),
                    "legacy_links": False,
                    "was_active": True,
                }
                for n in range(start, min(count, start + CHUNK))
            ]
            connection.execute(insert(subscribers), rows)
            connection.execute(
                insert(subscriber_topics),
                [{"subscriber_id": row["id"], "topic": "research"} for row in rows],
            )
    store.close()


@contextmanager
def server(module: str) -> Iterator[str]:
    """A fake server (``python -m module``) in its own process; yields what it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def fake_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as response:
        stats: dict[str, Any] = json.load(response)
    return stats


def send(config: Config, provider: str | None = None) -> tuple[int, float]:
    """One whole campaign; (recipients sent, seconds from plan to summary)."""
    started = time.perf_counter()
    plan = plan_send(config, config.root / SEED, provider=provider)
    summary = send_campaign(config, plan)
    assert summary.stopped is None, summary.stopped
    return summary.sent, time.perf_counter() - started


# -- the measurements -------------------------------------------------------------


def sendgrid_run(
    work: Path, count: int, batch_size: int, url: str, database_url: str | None = None
) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(dir=work))
    database = {"database_url": database_url} if database_url else {}
    config = make_project(
        folder,
        provider="sendgrid",
        sendgrid={"api_host": url, "batch_size": batch_size},
        **database,
    )
    populate(config, count)
    before = fake_stats(url)
    sent, seconds = send(config)
    after = fake_stats(url)
    shutil.rmtree(folder)
    assert sent == count and after["duplicates"] == 0
    return {
        "rate": sent / seconds,
        "seconds": seconds,
        "requests": after["requests"] - before["requests"],
        "max_personalizations": after["max_personalizations"],
    }


def memory_child(mode: str, folder: Path) -> None:
    """Run in a fresh process: send (or materialise) and print the peak RSS."""
    config = load_config(folder / "newsletter.yaml")
    started = time.perf_counter()
    if mode == "send":
        sent, _ = send(config)
    else:
        store = open_store(config)
        sent = len(list(store.recipients(["research"])))
        store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "count": sent,
                      "seconds": time.perf_counter() - started}))  # fmt: skip


def memory_run(work: Path, count: int, url: str, mode: str) -> dict[str, float]:
    folder = work / f"memory-{count}"
    if not folder.exists():
        config = make_project(folder, provider="sendgrid", sendgrid={"api_host": url})
        populate(config, count)
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(folder)],
        capture_output=True, text=True, check=True, env=os.environ.copy(),
    )  # fmt: skip
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def smtp_run(
    work: Path, count: int, port: int, provider: str, connections: int, dkim_key: Path | None = None
) -> float:
    """Messages per second of one campaign through SMTP; ``dkim_key``: signed with it."""
    folder = Path(tempfile.mkdtemp(dir=work))
    dkim = {"dkim": {"selector": "s1", "private_key_file": str(dkim_key)}} if dkim_key else {}
    config = make_project(
        folder,
        provider="smtp",
        smtp={"host": "127.0.0.1", "port": port, "security": "none",
              "connections": connections, **dkim},
    )  # fmt: skip
    populate(config, count)
    before = resource.getrusage(resource.RUSAGE_SELF)
    sent, seconds = send(config, provider)
    after = resource.getrusage(resource.RUSAGE_SELF)
    shutil.rmtree(folder)
    assert sent == count
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    last_smtp_cpu_ms.append(cpu / sent * 1000)
    return sent / seconds


# The sending process's CPU per message (all its threads) in each smtp_run, in ms: the
# cost of signing shows here even where a slow sink hides it from the rate.
last_smtp_cpu_ms: list[float] = []


def smtp_ceiling(port: int, count: int, connections: int) -> float:
    """The sink's own limit: one prepared message sent ``count`` times over reused
    connections by bare smtplib, with no ledger, no personalisation, no provider."""
    config = make_project(Path(tempfile.mkdtemp()))
    issue = read_issue(config.root / SEED, topics=config.topic_ids)
    content = campaign_content(config, compile_issue(issue, config))
    recipient = RecipientBuilder(config, Links(config, Signer("benchmark")), 1)
    _, message = local_message(
        content, recipient(LedgerRecipient(1, "a@example.org", "A", "benchmark"))
    )
    data = message.replace(b"\n", b"\r\n")
    shutil.rmtree(config.root)

    def connection(messages: int) -> None:
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="benchmark")
        for _ in range(messages):
            client.sendmail(config.sender.email, ["a@example.org"], data)
        client.quit()

    started = time.perf_counter()
    threads = [
        threading.Thread(target=connection, args=(count // connections,))
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory", type=int, default=1_000_000)
    parser.add_argument("--smtp", type=int, default=2_000)
    parser.add_argument(
        "--smtp-only", action="store_true", help="Only the SMTP measures (reuse, DKIM)."
    )
    parser.add_argument("--postgres", help="Also send from this PostgreSQL database.")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "benchmark-secret-key-0123456789abcdef")
    os.environ["SENDGRID_API_KEY"] = API_KEY
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    if args.child:
        memory_child(args.child[0], Path(args.child[1]))
        return

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if not args.smtp_only:
            with server("tests.fakes.sendgrid") as url:
                batched = [
                    sendgrid_run(work, args.subscribers, 1000, url) for _ in range(args.runs)
                ]
                single = [sendgrid_run(work, 2_000, 1, url) for _ in range(args.runs)]
                rate = statistics.median(run["rate"] for run in batched)
                single_rate = statistics.median(run["rate"] for run in single)
                rows.append((
                    f"SendGrid, {args.subscribers:,} subscribers (recipients/s, end to end)",
                    f"{rate:,.0f}", f"{single_rate:,.0f} (1 per request)",
                    f"{rate / single_rate:.0f}x", ">= 20,000",
                ))  # fmt: skip
                if args.postgres:
                    sys.path.insert(0, str(ROOT))  # the test suite's throwaway schemas
                    from tests.store.databases import postgres_schema

                    on_postgres = []
                    for _ in range(args.runs):
                        with postgres_schema(args.postgres) as database_url:
                            on_postgres.append(
                                sendgrid_run(work, args.subscribers, 1000, url, database_url)
                            )
                    pg_rate = statistics.median(run["rate"] for run in on_postgres)
                    rows.append((
                        f"SendGrid, {args.subscribers:,} subscribers in PostgreSQL (recipients/s)",
                        f"{pg_rate:,.0f}", f"{rate:,.0f} (SQLite, above)",
                        f"{pg_rate / rate:.2f}x", ">= 20,000",
                    ))  # fmt: skip
                requests = max(run["requests"] for run in batched)
                rows.append((
                    f"SendGrid HTTP requests for {args.subscribers:,}",
                    f"{requests:.0f}", f"{args.subscribers:,} (1 per request)",
                    f"{args.subscribers / requests:.0f}x fewer", "<= 100",
                ))  # fmt: skip
                if args.memory:
                    streamed = memory_run(work, args.memory, url, "send")
                    listed = memory_run(work, args.memory, url, "list")
                    speed = streamed["count"] / streamed["seconds"]
                    rows.append((
                        f"Peak RSS, sending to {args.memory:,} (MB)",
                        f"{streamed['peak_mb']:.0f} ({speed:,.0f}/s)",
                        f"{listed['peak_mb']:.0f} (recipients in a list)",
                        f"{listed['peak_mb'] / streamed['peak_mb']:.1f}x less", "< 200",
                    ))  # fmt: skip
        if args.smtp:
            with server("tests.fakes.smtp") as port:
                reused = [smtp_run(work, args.smtp, int(port), "smtp", 2) for _ in range(args.runs)]
                fresh = [
                    smtp_run(work, args.smtp, int(port), "smtp-per-message", 2)
                    for _ in range(args.runs)
                ]
                ceiling = statistics.median(
                    smtp_ceiling(int(port), args.smtp, 2) for _ in range(args.runs)
                )
                rows.append((
                    "aiosmtpd sink alone: bare smtplib, one prepared message (msg/s)",
                    f"{ceiling:,.0f}", "", "", "(the sink's limit)",
                ))  # fmt: skip
                rows.append((
                    f"SMTP to aiosmtpd, {args.smtp:,} messages, 2 connections (msg/s)",
                    f"{statistics.median(reused):,.0f}",
                    f"{statistics.median(fresh):,.0f} (1 connection per message)",
                    f"{statistics.median(reused) / statistics.median(fresh):.1f}x", ">= 300",
                ))  # fmt: skip
                # DKIM: signed and unsigned runs taken in turns, so both see the same load.
                key = work / "dkim-s1.pem"
                write_private_key(key, generate_key(2048))
                signed, unsigned, signed_cpu, unsigned_cpu = [], [], [], []
                for _ in range(args.runs):
                    signed.append(smtp_run(work, args.smtp, int(port), "smtp", 2, key))
                    signed_cpu.append(last_smtp_cpu_ms[-1])
                    unsigned.append(smtp_run(work, args.smtp, int(port), "smtp", 2))
                    unsigned_cpu.append(last_smtp_cpu_ms[-1])
                rows.append((
                    f"SMTP with DKIM signing (RSA 2048), {args.smtp:,} messages (msg/s)",
                    f"{statistics.median(signed):,.0f}",
                    f"{statistics.median(unsigned):,.0f} (unsigned, runs in turn)",
                    f"{statistics.median(signed) / statistics.median(unsigned):.2f}x",
                    ">= 0.75x",
                ))  # fmt: skip
                rows.append((
                    "the same, CPU of the sending process per message (ms)",
                    f"{statistics.median(signed_cpu):.2f}",
                    f"{statistics.median(unsigned_cpu):.2f} (unsigned)",
                    f"{statistics.median(signed_cpu) / statistics.median(unsigned_cpu):.2f}x",
                    "(what a faster relay would see)",
                ))  # fmt: skip

    load = os.getloadavg()[0]
    print(f"Median of {args.runs} runs; {os.cpu_count()} cores, load average {load:.1f}.\n")
    print("| measure | newsletter | baseline | ratio | target |")
    print("| --- | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
