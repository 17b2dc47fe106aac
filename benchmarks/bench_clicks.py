"""Click redirect benchmark: ``GET /c/<token>`` against the production server.

    python benchmarks/bench_clicks.py [--runs 3] [--seconds 5] [--connections 8]
                                      [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

Starts ``newsletter serve`` (waitress) on 127.0.0.1 over a fresh database with one
campaign of ``--links`` tracked links, then drives it from a load client in a separate
process (keep-alive HTTP/1.1 connections, each sending its next request as soon as the
last is answered), clicking the links in turn. Every answer must be a 302 to the link's
URL; at the end the counts in the database must add up to the clicks answered. The
baseline, side by side on the same server, is ``GET /healthz``. Each figure is the
median of ``--runs`` runs; prints a Markdown table.

Target (issue 15): at least 1,000 redirects per second with p99 under 50 ms.

``--kill``: what a crash costs (issue 20). After the runs, the server is started again
and killed (SIGKILL, no flush) 2.5 s into a run of clicks: the clicks answered but
not counted are the ones lost. Beside it, the ceiling of the alternative ("answered
means counted"): one committed UPDATE per click, from ``--threads`` threads straight
to the database (no HTTP at all), for ``--seconds``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import SECRET, RunResult, Scenario, free_port, prepare, run_client, start_server

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATE = 1000
TARGET_P99_MS = 50.0


def tracked_links(database_url: str, links: int) -> list[str]:
    """One campaign with ``links`` links recorded; the /c/ path of each."""
    from newsletter.send import campaign_rows
    from newsletter.send.click_tracking import register_links
    from newsletter.store import open_store_url
    from newsletter.tokens import TrackingSigner

    store = open_store_url(database_url, ("research", "stories", "events"))
    try:
        campaign = campaign_rows.start_campaign(
            store, slug="bench", issue_path="bench.md", subject="Bench", topics=[],
            provider="outbox",
        )  # fmt: skip
        numbers = register_links(
            store, campaign.id, [f"https://example.org/article/{n}" for n in range(links)]
        )
    finally:
        store.close()
    signer = TrackingSigner(SECRET)
    return [f"/c/{signer.click_token(campaign.id, number)}" for number in numbers.values()]


def counted_clicks(database_url: str) -> int:
    from sqlalchemy import func, select

    from newsletter.store import open_store_url
    from newsletter.store.scheduling import campaign_links

    store = open_store_url(database_url, ("research", "stories", "events"))
    try:
        with store.engine.connect() as connection:
            return connection.scalar(select(func.sum(campaign_links.c.clicks))) or 0
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--links", type=int, default=20)
    parser.add_argument("--postgres", help="Serve from this PostgreSQL database, not SQLite.")
    parser.add_argument("--kill", action="store_true", help="Measure what a SIGKILL loses.")
    options = parser.parse_args()
    if options.postgres:
        sys.path.insert(0, str(ROOT))
        from tests.store.databases import postgres_schema

        with postgres_schema(options.postgres) as database_url:
            benchmark(options, database_url)
    else:
        benchmark(options, None)


def benchmark(options: argparse.Namespace, database_url: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-clicks-"))
    try:
        config, database_url, _ = prepare(folder, 10, database_url)
        paths = tracked_links(database_url, options.links)
        port = free_port()
        server = start_server(config, database_url, port, options.threads)
        # Enough requests for any run: each connection takes its share in turn.
        many = 1_000_000
        scenarios = {
            "baseline": Scenario("GET /healthz", "GET", ["/healthz"] * many),
            "click": Scenario(
                "GET /c/<token>", "GET", paths * (many // len(paths)), expect=b"HTTP/1.1 302"
            ),
        }
        results: dict[str, list[RunResult]] = {"baseline": [], "click": []}
        answered = 0
        killed: tuple[int, int] | None = None
        try:
            for run in range(options.runs + 1):  # run 0 warms up and is not counted
                seconds = 1.0 if run == 0 else options.seconds
                for name, scenario in scenarios.items():
                    result = run_client(server, port, scenario, options.connections, seconds)
                    if name == "click":
                        answered += result.requests
                    if run:
                        results[name].append(result)
                    show(run, name, result)
            if options.kill:
                server.terminate()  # SIGTERM: the server flushes its counts on the way out
                server.wait(timeout=30)
                before = counted_clicks(database_url)
                server = start_server(config, database_url, port, options.threads)
                answered_before_kill = clicks_until_killed(server, port, paths, options)
                killed = (answered_before_kill, counted_clicks(database_url) - before)
        finally:
            server.terminate()  # SIGTERM: the server flushes its counts on the way out
            server.wait(timeout=30)
        counted = counted_clicks(database_url)
        ceiling = commit_ceiling(database_url, options) if options.kill else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(results, options, answered, counted - (killed[1] if killed else 0))
    if killed is not None and ceiling is not None:
        lost = killed[0] - killed[1]
        print(
            f"\nKilled (SIGKILL) 2.5 s into a run of clicks: {killed[0]} answered, {killed[1]} "
            f"counted, {lost} lost ({lost / max(1, killed[0]):.1%}). One committed UPDATE "
            f"per click, {options.threads} threads straight to the database: {ceiling:.0f}/s."
        )


def clicks_until_killed(
    server: subprocess.Popen, port: int, paths: list[str], options: argparse.Namespace
) -> int:
    """302 answers received from ``--connections`` keep-alive clients until the server is
    killed (SIGKILL, 2.5 s in): each counted answer reached a reader."""
    import http.client

    answered = [0] * options.connections

    def clicker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for n in itertools.count(index):
                connection.request("GET", paths[n % len(paths)])
                response = connection.getresponse()
                response.read()
                if response.status == 302:
                    answered[index] += 1
        except OSError:  # the server is gone
            return
        finally:
            connection.close()

    threads = [threading.Thread(target=clicker, args=(n,)) for n in range(options.connections)]
    for thread in threads:
        thread.start()
    time.sleep(2.5)
    server.kill()  # what is still in memory is lost
    server.wait(timeout=30)
    for thread in threads:
        thread.join()
    return sum(answered)


def commit_ceiling(database_url: str, options: argparse.Namespace) -> float:
    """Committed single-click UPDATEs per second, ``options.threads`` threads at once."""
    from sqlalchemy import update

    from newsletter.store import open_store_url
    from newsletter.store.scheduling import campaign_links

    store = open_store_url(database_url, ("research", "stories", "events"))
    done = [0] * options.threads
    deadline = time.perf_counter() + options.seconds

    def clicker(index: int) -> None:
        link = index % options.links
        while time.perf_counter() < deadline:
            with store.engine.connect() as connection:
                connection.execution_options(write=True)
                with connection.begin():
                    connection.execute(
                        update(campaign_links)
                        .where(campaign_links.c.link == link)
                        .values(clicks=campaign_links.c.clicks + 1)
                    )
            done[index] += 1

    threads = [threading.Thread(target=clicker, args=(n,)) for n in range(options.threads)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        store.close()
    return sum(done) / options.seconds


def show(run: int, name: str, result: RunResult) -> None:
    print(
        f"run {run} {name:8}: {result.rate:6.0f} req/s  p50 {result.p50_ms:5.1f} ms  "
        f"p99 {result.p99_ms:5.1f} ms  server CPU {result.server_cpu_ms:.2f} ms/req  "
        f"wrong {result.errors}",
        file=sys.stderr,
    )


def report(
    results: dict[str, list[RunResult]], options: argparse.Namespace, answered: int, counted: int
) -> None:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(result, field) for result in results[name])

    print(
        f"\nnewsletter serve (waitress, {options.threads} threads), "
        f"{'PostgreSQL' if options.postgres else 'SQLite'}, {options.connections} keep-alive "
        f"connections from a separate process, median of {options.runs} runs of "
        f"{options.seconds:g} s, {os.cpu_count()} cores\n"
    )
    print("| request | req/s | p50 ms | p99 ms | server CPU ms/req | wrong answers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, name in (("GET /healthz (baseline)", "baseline"), ("GET /c/<token> (302)", "click")):
        wrong = sum(result.errors for result in results[name])
        print(
            f"| {label} | {median(name, 'rate'):.0f} | {median(name, 'p50_ms'):.1f} | "
            f"{median(name, 'p99_ms'):.1f} | {median(name, 'server_cpu_ms'):.2f} | {wrong} |"
        )
    rate, p99 = median("click", "rate"), median("click", "p99_ms")
    verdict = "met" if rate >= TARGET_RATE and p99 < TARGET_P99_MS else "NOT met"
    print(
        f"\nTarget (>= {TARGET_RATE} redirects/s, p99 < {TARGET_P99_MS:.0f} ms): {verdict}. "
        f"Clicks answered {answered}, counted in the database {counted}. Load average "
        f"(1 min) now: {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    main()
