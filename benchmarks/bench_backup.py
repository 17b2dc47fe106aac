"""Backup, restore and copy of a large list: time and peak memory, against each engine's
own tool in the same run.

    python benchmarks/bench_backup.py [--subscribers 1000000] [--ledger 1000000] [--runs 3]
                                      [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Builds a SQLite database of ``--subscribers`` subscribers and ``--ledger`` ledger rows
(one campaign), copies it into a fresh PostgreSQL schema with ``newsletter db copy``,
then times, each as its own process (``python -m newsletter ...``), median of
``--runs``:

- ``db backup`` of SQLite, against SQLite's online backup API (``sqlite3 .backup`` as
  Python's ``Connection.backup`` runs it: a page copy, no format change);
- ``db backup`` of PostgreSQL, against ``pg_dump -Fc`` (custom format, compressed);
- ``db restore`` into an empty PostgreSQL schema, against ``pg_restore`` of that dump;
- ``db restore`` into an empty SQLite file;
- ``db copy`` SQLite -> PostgreSQL.

Peak memory is each process's maximum resident set (``wait4``). A second, ten times
smaller list shows whether memory stays flat (``--flat 0`` skips it). Targets (issue
28): backup <= 30 s on SQLite, <= 60 s on PostgreSQL; restore and copy <= 2 min.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"backup SQLite": 30.0, "backup PostgreSQL": 60.0, "restore": 120.0, "copy": 120.0}
WHEN = "2026-11-26 09:30:00.000000"


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float


def timed(command: list[str], env: dict[str, str] | None = None) -> Run:
    """Wall time and peak RSS of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(command)} failed:\n{error}")
    return Run(elapsed, usage.ru_maxrss / 1024)


def newsletter(*args: str) -> list[str]:
    return [sys.executable, "-m", "newsletter", "--config", str(ROOT / "newsletter.yaml"), *args]


def build_sqlite(path: Path, subscribers: int, ledger: int) -> None:
    """The schema as the program makes it, then rows as an import and a send write them."""
    from newsletter.store import open_store_url

    open_store_url(f"sqlite:///{path}", ["research"]).close()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    with connection:
        connection.executemany(
            "INSERT INTO subscribers (id, email, email_key, name, status, attributes, "
            "created_at, updated_at, source, opt_in_at, opt_in_ip, confirmed_at, link_key, "
            "legacy_links, was_active) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, "
            "0, 1)",
            (
                (n, f"reader{n}@example.org", f"reader{n}@example.org", f"Reader Number {n}",
                 '{"city": "Lisbon"}' if n % 3 else "{}", WHEN, WHEN, "import:list.csv", WHEN,
                 f"192.0.2.{n % 250}", WHEN, secrets.token_urlsafe(8))
                for n in range(1, subscribers + 1)
            ),
        )  # fmt: skip
        connection.execute(
            "INSERT INTO campaigns (id, slug, issue_path, subject, topics, provider, "
            "recipients, created_at) VALUES (1, 'big', 'issues/big.md', 'Big', '[]', "
            f"'sendgrid', {ledger}, '{WHEN}')"
        )
        connection.executemany(
            "INSERT INTO ledger (campaign_id, subscriber_id, state, attempts, message_id, "
            "sent_at, updated_at) VALUES (1, ?, 'sent', 1, ?, ?, ?)",
            ((n, f"msg-{n // 1000}.filter0001", WHEN, WHEN) for n in range(1, ledger + 1)),
        )
    connection.close()


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    sys.path.insert(0, str(ROOT))
    from tests.store.databases import postgres_schema as schema

    with schema(base_url) as url:
        yield url


@contextmanager
def scratch_database(base_url: str) -> Iterator[str]:
    """A new, empty database (pg_restore recreates the dumped schema by its name)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(base_url).set(drivername="postgresql", database=name, query={})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def libpq(url: str) -> tuple[str, str]:
    """A libpq connection string and schema name for pg_dump / pg_restore."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    schema = parsed.query["options"].split("search_path=")[1]
    plain = parsed.set(drivername="postgresql", query={})
    return plain.render_as_string(hide_password=False), str(schema)


def median_of(runs: int, once: Callable[[], Run]) -> tuple[Run, list[Run]]:
    results = [once() for _ in range(runs)]
    middle = Run(statistics.median(r.seconds for r in results), max(r.peak_mb for r in results))
    return middle, results


def measure(options: argparse.Namespace, subscribers: int, ledger: int) -> dict[str, Run]:
    folder = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    figures: dict[str, Run] = {}
    try:
        source = folder / "source.db"
        started = time.perf_counter()
        build_sqlite(source, subscribers, ledger)
        print(f"built {subscribers:,} + {ledger:,} rows in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)  # fmt: skip
        sqlite_url = f"sqlite:///{source}"
        backup = folder / "news.backup"

        def note(name: str, run: Run, runs: list[Run]) -> None:
            figures[name] = run
            print(f"{name:32} {run.seconds:7.1f} s  peak {run.peak_mb:6.0f} MB  "
                  f"({', '.join(f'{r.seconds:.1f}' for r in runs)})", file=sys.stderr)  # fmt: skip

        env_sqlite = {"NEWSLETTER_DATABASE_URL": sqlite_url}

        def backup_sqlite() -> Run:
            return timed(newsletter("db", "backup", str(backup)), env_sqlite)

        def sqlite_native() -> Run:
            target = folder / "native.db"
            target.unlink(missing_ok=True)
            code = ("import sqlite3,sys; s=sqlite3.connect(sys.argv[1]); d=sqlite3.connect("
                    "sys.argv[2]); s.backup(d); d.close()")  # fmt: skip
            return timed([sys.executable, "-c", code, str(source), str(target)])

        def restore_sqlite() -> Run:
            target = folder / "restored.db"
            for stale in folder.glob("restored.db*"):
                stale.unlink()
            return timed(newsletter("db", "restore", str(backup)),
                         {"NEWSLETTER_DATABASE_URL": f"sqlite:///{target}"})  # fmt: skip

        if options.only == "postgresql":
            backup_sqlite()  # the file the PostgreSQL restores read
        else:
            note("db backup (SQLite)", *median_of(options.runs, backup_sqlite))
            note("SQLite online backup API", *median_of(options.runs, sqlite_native))
            note("db restore (into SQLite)", *median_of(options.runs, restore_sqlite))
        if options.postgres and options.only != "sqlite":

            def copy_to_postgres() -> Run:
                with postgres_schema(options.postgres) as url:
                    return timed(newsletter("db", "copy", "--to", url), env_sqlite)

            note("db copy (SQLite -> PostgreSQL)", *median_of(options.runs, copy_to_postgres))

            def restore_postgres() -> Run:
                with postgres_schema(options.postgres) as url:
                    return timed(newsletter("db", "restore", str(backup)),
                                 {"NEWSLETTER_DATABASE_URL": url})  # fmt: skip

            note("db restore (into PostgreSQL)", *median_of(options.runs, restore_postgres))

            with postgres_schema(options.postgres) as url:
                timed(newsletter("db", "copy", "--to", url), env_sqlite)
                env_pg = {"NEWSLETTER_DATABASE_URL": url}
                note("db backup (PostgreSQL)", *median_of(options.runs, lambda: timed(
                    newsletter("db", "backup", str(folder / "pg.backup")), env_pg)))  # fmt: skip
                dsn, schema = libpq(url)
                dump = folder / "pg.dump"
                note("pg_dump -Fc", *median_of(options.runs, lambda: timed(
                    ["pg_dump", "-Fc", "-n", schema, "-f", str(dump), dsn])))  # fmt: skip

            def pg_restore() -> Run:
                with scratch_database(options.postgres) as dsn:
                    return timed(["pg_restore", "--no-owner", "--single-transaction",
                                  "-d", dsn, str(dump)])  # fmt: skip

            note("pg_restore (one transaction)", *median_of(options.runs, pg_restore))
        figures["file MB"] = Run(backup.stat().st_size / 1e6, 0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--ledger", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flat", type=int, default=10, help="the smaller list: 1/N the size")
    parser.add_argument("--postgres", help="PostgreSQL to copy into and restore into.")
    parser.add_argument(
        "--only", choices=["sqlite", "postgresql"], help="Only the runs on this side."
    )
    options = parser.parse_args()
    load = os.getloadavg()[0]
    big = measure(options, options.subscribers, options.ledger)
    small = (
        measure(options, options.subscribers // options.flat, options.ledger // options.flat)
        if options.flat
        else {}
    )
    size = big["file MB"].seconds
    print(f"\n{options.subscribers:,} subscribers and {options.ledger:,} ledger rows; median of "
          f"{options.runs} runs, each its own process; backup file {size:.0f} MB; "
          f"{os.cpu_count()} cores, load average {load:.1f} before / {os.getloadavg()[0]:.1f} "
          "after\n")  # fmt: skip
    print("| operation | seconds | peak RSS MB | peak RSS MB at 1/10 the rows |")
    print("| --- | ---: | ---: | ---: |")
    for name, run in big.items():
        if name == "file MB":
            continue
        smaller = f"{small[name].peak_mb:.0f}" if name in small else ""
        print(f"| {name} | {run.seconds:.1f} | {run.peak_mb:.0f} | {smaller} |")


if __name__ == "__main__":
    main()
