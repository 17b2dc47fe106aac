"""Soak: kill the sender again and again under a fault mix; count duplicates and losses.

    python benchmarks/bench_soak.py [--subscribers 2000] [--kills 5] [--runs 2]
                                    [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Each run sends one campaign to ``--subscribers`` readers through a real ``newsletter
send`` subprocess, SIGKILLs it ``--kills`` times at random moments, then lets a last
run finish. SendGrid runs go to the fake SendGrid (tests/fakes/sendgrid.py) with a
fault mix on a quarter of the requests: answers lost after delivery (connection
dropped, or too slow for the client's timeout), 503s, and connections dropped before
delivery. SMTP runs go to an aiosmtpd sink over two connections. Meanwhile a tenth
of the readers unsubscribe.

Per run it prints, from what the servers received and what the ledger says:

- duplicates: readers who received more than one copy (expected 0);
- lost: readers the ledger calls ``sent`` who received nothing, or who received
  nothing and are neither ``unknown`` nor ``skipped`` (expected 0);
- unknown: rows left for the webhook or ``--retry-unknown`` (SMTP: at most one per
  connection per kill).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the test suite's fakes and throwaway schemas

from newsletter.store import Store, open_store_url  # noqa: E402
from newsletter.store.bulk_plan import Candidate  # noqa: E402
from newsletter.store.schema import ledger, subscribers  # noqa: E402
from tests.fakes.sendgrid import API_KEY, FakeSendGrid  # noqa: E402
from tests.fakes.smtp import FakeSmtp  # noqa: E402

SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
TOPICS = ("research", "stories", "events")


def make_project(folder: Path, database_url: str, **settings: Any) -> Path:
    folder.mkdir(parents=True)
    for name in ("newsletter.yaml", "issues", "templates"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy2(source, folder / name)
    data = yaml.safe_load((folder / "newsletter.yaml").read_text(encoding="utf-8"))
    data |= {"database_url": database_url, **settings}
    data["sending"] = {**data.get("sending", {}), "retries": 2, "retry_delay": 0.05,
                       "retry_max_delay": 0.2}  # fmt: skip
    (folder / "newsletter.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


def populate(store: Store, count: int) -> list[int]:
    for start in range(0, count, 1000):
        store.merge_many(
            [
                Candidate(f"reader{n}@example.org", f"Reader {n}", ("research",))
                for n in range(start, min(start + 1000, count))
            ]
        )
    with store.engine.connect() as connection:
        return list(connection.scalars(select(subscribers.c.id).order_by(subscribers.c.id)))


def sender(project: Path, env: dict[str, str], rate: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", SEED, "--yes", "--rate", str(rate)],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def fault_mix(fake: FakeSendGrid, requests: int, seed: int) -> None:
    """A quarter of the requests fault: one of every four, at a place the seed picks,
    the four kinds in turn. (Drawn request by request, a seed could leave the few
    requests of a small run all unfaulted: seed 0 faulted none of the first 25.)"""
    chooser = random.Random(seed)
    kinds: list[Callable[[], None]] = [
        lambda: fake.drop_next(deliver=True),  # accepted, answer lost
        lambda: fake.slow_next(2.0, deliver=True),  # accepted, the client times out first
        lambda: fake.fail_next(503),
        lambda: fake.drop_next(deliver=False),  # dropped before delivery
    ]
    for block in range((requests + 3) // 4):
        faulty = chooser.randrange(4)
        for place in range(4):
            if place == faulty:
                kinds[block % len(kinds)]()
            else:
                fake.normal_next()


def unsubscriber(
    store: Store, ids: list[int], stop: threading.Event, log: dict[int, float]
) -> None:
    """Unsubscribe a tenth of the readers, one every few milliseconds, noting when each
    committed."""
    chosen = random.Random(7).sample(ids, len(ids) // 10)
    for subscriber_id in chosen:
        if stop.is_set():
            return
        store.unsubscribe(subscriber_id, source="soak")
        log[subscriber_id] = time.time()
        time.sleep(0.02)


def one_run(
    work: Path, provider: str, count: int, kills: int, database_url: str, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    store = open_store_url(database_url, TOPICS)
    ids = populate(store, count)
    env = {
        **os.environ,
        "NEWSLETTER_SECRET_KEY": "soak-secret-key-0123456789abcdef",
        "SENDGRID_API_KEY": API_KEY,
    }
    env.pop("NEWSLETTER_DATABASE_URL", None)
    unsubscribed_at: dict[int, float] = {}
    stop = threading.Event()
    with FakeSendGrid(keep_requests=False) as fake, FakeSmtp(keep=True) as smtp:
        if provider == "sendgrid":
            fault_mix(fake, 10 * count // 100 + 100, seed)
            settings: dict[str, Any] = {
                "provider": "sendgrid",
                "sendgrid": {"api_host": fake.url, "batch_size": 100, "timeout": 1.0},
            }
            rate = max(count // 8, 100)
        else:
            settings = {
                "provider": "smtp",
                "smtp": {"host": smtp.host, "port": smtp.port, "security": "none",
                         "connections": 2},
                "sending": {"batch_size": 100},
            }  # fmt: skip
            rate = max(count // 8, 100)
        project = make_project(work / f"{provider}-{seed}", database_url, **settings)
        worker = threading.Thread(target=unsubscriber, args=(store, ids, stop, unsubscribed_at))
        for kill in range(kills):
            process = sender(project, env, rate)
            started = handed_over(store)
            # Kill while it sends: once it has handed over more, at a random moment.
            deadline = time.monotonic() + 60
            while handed_over(store) <= started and time.monotonic() < deadline:
                time.sleep(0.02)
            if kill == 0:
                worker.start()  # after the snapshot: these readers must be skipped
            time.sleep(rng.uniform(0.0, 1.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
        if not kills:
            worker.start()
        for _ in range(5):  # a 503 streak may pause a run: send again, as a user would
            final = sender(project, env, rate * 4)
            final.wait(timeout=600)
            if final.returncode == 0 and not pending_rows(store):
                break
        stop.set()
        worker.join()
        received: Counter[str] = (
            fake.received_by() if provider == "sendgrid" else smtp.received_by()
        )
    with store.engine.connect() as connection:
        rows = connection.execute(select(ledger.c.subscriber_id, ledger.c.state)).all()
    store.close()
    address = {subscriber_id: f"reader{n}@example.org" for n, subscriber_id in enumerate(ids)}
    states = {subscriber_id: state for subscriber_id, state in rows}
    duplicates = sum(1 for copies in received.values() if copies > 1)
    lost = sum(
        1
        for subscriber_id, state in states.items()
        if not received[address[subscriber_id]] and state not in ("unknown", "skipped")
    )
    counts = Counter(states.values())
    return {
        "provider": provider,
        "kills": kills,
        "sent": counts["sent"],
        "unknown": counts["unknown"],
        "skipped": counts["skipped"],
        "pending": counts["pending"],
        "duplicates": duplicates,
        "lost": lost,
        "unsubscribed_meanwhile": len(unsubscribed_at),
        "exit": final.returncode,
    }


def handed_over(store: Store) -> int:
    """Ledger rows no longer pending (handed over, settled or skipped)."""
    with store.engine.connect() as connection:
        return len(
            connection.execute(
                select(ledger.c.subscriber_id).where(ledger.c.state != "pending")
            ).all()
        )


def pending_rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return len(
            connection.execute(
                select(ledger.c.subscriber_id).where(ledger.c.state.in_(("pending", "in_flight")))
            ).all()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--runs", type=int, default=2, help="Runs per provider.")
    parser.add_argument("--postgres", help="Run against this PostgreSQL database instead.")
    args = parser.parse_args()
    print("| run | database | provider | kills | sent | unknown | skipped (unsubscribed "
          "meanwhile) | pending | duplicates | lost |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        number = 0
        for provider in ("sendgrid", "smtp"):
            for run in range(args.runs):
                number += 1
                if args.postgres:
                    from tests.store.databases import postgres_schema

                    with postgres_schema(args.postgres) as database_url:
                        result = one_run(
                            work, provider, args.subscribers, args.kills, database_url, run
                        )
                    database = "PostgreSQL"
                else:
                    database_url = f"sqlite:///{work / f'soak-{number}.db'}"
                    result = one_run(
                        work, provider, args.subscribers, args.kills, database_url, run
                    )
                    database = "SQLite"
                print(
                    f"| {number} | {database} | {provider} | {result['kills']} | "
                    f"{result['sent']} | {result['unknown']} | {result['skipped']} "
                    f"({result['unsubscribed_meanwhile']}) | {result['pending']} | "
                    f"{result['duplicates']} | {result['lost']} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
