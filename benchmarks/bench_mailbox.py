"""Mailbox benchmark: process a Maildir of bounces with ``newsletter mailbox process``.

    python benchmarks/bench_mailbox.py [--messages 10000] [--runs 3]

Builds a fresh project with a SQLite store of ``--messages`` active subscribers and one
sent campaign, and a Maildir of as many returned messages, one per subscriber, in the
mix a real return path sees (per 20: 12 Postfix/Gmail/Microsoft/Exim hard bounces, 4
delayed or over-quota soft bounces, 2 auto-replies, 1 abuse report, 1 mailto
unsubscribe), each signed for its subscriber. Then times ``process_mailbox`` (the
library call behind the command: read, classify, apply in one transaction per 500
messages, move to cur/). Each figure is the median of ``--runs`` runs, each on a fresh
copy. Target (issue 13): 10,000 messages in at most 10 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import load_config  # noqa: E402
from newsletter.send import campaign_rows  # noqa: E402
from newsletter.send.mailbox import process_mailbox  # noqa: E402
from newsletter.send.return_tokens import ReturnTokens  # noqa: E402
from newsletter.store import open_store  # noqa: E402
from newsletter.store.bulk_plan import Candidate  # noqa: E402
from newsletter.store.returns import link_keys  # noqa: E402
from tests.mailbox.conftest import fill  # noqa: E402

SECRET = "benchmark-secret-key-0123456789abcdef"
TARGET_SECONDS = 10.0
MIX = (
    ["postfix-user-unknown", "gmail-no-such-user", "microsoft-recipient-not-found"] * 3
    + ["exim-failed"] * 3
    + ["postfix-delayed", "gmail-over-quota"] * 2
    + ["out-of-office"] * 2
    + ["microsoft-jmrp-complaint", "mailto-unsubscribe"]
)


def build(folder: Path, count: int) -> Path:
    project = folder
    project.mkdir(parents=True)
    shutil.copy2(ROOT / "newsletter.yaml", project / "newsletter.yaml")
    with (project / "newsletter.yaml").open("a", encoding="utf-8") as config_file:
        config_file.write("\nbounces:\n  address: bounces@breastfeedingworld.example\n")
        config_file.write("mailbox:\n  url: maildir:returns\n")
    config = load_config(project / "newsletter.yaml")
    store = open_store(config)
    try:
        for start in range(0, count, 5000):
            store.merge_many(
                [
                    Candidate(f"reader{n}@example.net", topics=("research",))
                    for n in range(start, min(count, start + 5000))
                ]
            )
        campaign = campaign_rows.start_campaign(
            store, slug="bench", issue_path="issues/bench.md", subject="Bench",
            topics=[], provider="smtp",
        )  # fmt: skip
        keys = link_keys(store, range(1, count + 1))
    finally:
        store.close()
    tokens = ReturnTokens(SECRET)
    maildir = project / "returns"
    for part in ("new", "cur", "tmp"):
        (maildir / part).mkdir(parents=True)
    for n in range(count):
        message = fill(
            MIX[n % len(MIX)], n + 1, campaign.id, tokens=tokens, link_key=keys[n + 1], unique=n
        )
        # LF line ends, as an MTA writes a Maildir file.
        (maildir / "new" / f"1796000000.{n}.bench").write_bytes(message.replace(b"\r\n", b"\n"))
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    os.environ["NEWSLETTER_SECRET_KEY"] = SECRET
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as temporary:
        template = build(Path(temporary) / "template", options.messages)
        times, cpu = [], []
        for run in range(options.runs):
            project = Path(temporary) / f"run{run}"
            shutil.copytree(template, project)
            config = load_config(project / "newsletter.yaml")
            started, cpu_started = time.perf_counter(), time.process_time()
            summary = process_mailbox(config)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            handled = sum(summary.counts.values())
            assert handled == options.messages, summary
    median = statistics.median(times)
    # CPU seconds too: on a machine shared with other work, wall time mostly measures them.
    print("| messages | median s | messages/s | CPU s | load avg | target |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    verdict = "met" if median <= TARGET_SECONDS * options.messages / 10_000 else "MISSED"
    print(
        f"| {options.messages:,} | {median:.2f} | {options.messages / median:,.0f} | "
        f"{statistics.median(cpu):.2f} | {os.getloadavg()[0]:.1f} | "
        f"<= 10 s per 10,000: {verdict} |"
    )
    print(f"counts of the last run: {dict(summary.counts)}")


if __name__ == "__main__":
    main()
