"""Web app benchmark: RFC 8058 one-click unsubscribe POSTs against the production server.

    python benchmarks/bench_web.py [--runs 3] [--seconds 5] [--connections 8]
                                   [--postgres postgresql+psycopg://postgres@127.0.0.1/test]
                                   [--gunicorn 4]

Starts ``newsletter serve`` (waitress) on 127.0.0.1 over a fresh SQLite database (or a
fresh schema of the ``--postgres`` database) of
``--subscribers`` active subscribers, then drives it from a load client in a separate
process: ``--connections`` keep-alive HTTP/1.1 connections, each sending its next
request as soon as the last one is answered, for ``--seconds``. Every one-click POST
unsubscribes a different subscriber, so each one is a real write. The baseline, run
side by side on the same server, is ``GET /healthz`` (routing, headers and one
``SELECT 1``). Each figure is the median of ``--runs`` runs; prints a Markdown table.

With ``--gunicorn N`` the same runs go, in the same invocation, to ``gunicorn --workers
N --threads 4 newsletter.web.wsgi:app`` over the same database (after ``serve``), as
docs/deploy.md runs it; each server gets its own share of the subscribers.

Target (issue 6): at least 500 one-click POSTs per second with p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "benchmark-secret-key-0123456789abcdef"
GUNICORN_THREADS = 4  # per worker, as `newsletter deploy systemd` writes the unit
TARGET_RATE = 500
TARGET_P99_MS = 100.0


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    paths: list[str]
    body: bytes = b""
    content_type: str = ""
    expect: bytes = b"HTTP/1.1 200"  # the status line of a right answer


@dataclass(frozen=True)
class RunResult:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float = 0.0  # the server's CPU time per request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


# -- the load client (runs in its own process) -----------------------------------------


async def _connection(
    port: int, scenario: Scenario, paths: list[str], deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    extra = ""
    if scenario.body:
        extra = f"Content-Type: {scenario.content_type}\r\nContent-Length: {len(scenario.body)}\r\n"
    index = 0
    while time.perf_counter() < deadline and index < len(paths):
        request = (
            f"{scenario.method} {paths[index]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n"
        ).encode() + scenario.body
        index += 1
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if not head.startswith(scenario.expect):
            errors += 1
    writer.close()
    await writer.wait_closed()
    return errors


async def _load(port: int, scenario: Scenario, connections: int, seconds: float) -> RunResult:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    shares = [scenario.paths[n::connections] for n in range(connections)]
    errors = await asyncio.gather(
        *(_connection(port, scenario, share, deadline, latencies) for share in shares)
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return RunResult(
        requests=len(latencies),
        errors=sum(errors),
        seconds=elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
    )


def _client(port: int, scenario: Scenario, connections: int, seconds: float, results: Any) -> None:
    results.put(asyncio.run(_load(port, scenario, connections, seconds)))


def run_client(
    server: subprocess.Popen, port: int, scenario: Scenario, connections: int, seconds: float
) -> RunResult:
    """One timed run, from a separate process so that client and server do not share a GIL."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_client, args=(port, scenario, connections, seconds, results))
    cpu_before = cpu_seconds(server.pid)
    process.start()
    result = results.get(timeout=seconds + 60)
    process.join()
    cpu_ms = (cpu_seconds(server.pid) - cpu_before) * 1000 / max(result.requests, 1)
    return replace(result, server_cpu_ms=cpu_ms)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (gunicorn's workers;
    Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for child in children.read_text().split() if children.exists() else []:
        try:
            total += cpu_seconds(int(child))
        except FileNotFoundError:  # a worker that just exited
            continue
    return total


# -- the server --------------------------------------------------------------------------


def prepare(
    folder: Path, subscribers: int, database_url: str | None
) -> tuple[Path, str, list[tuple[int, str]]]:
    """The example project with ``subscribers`` active subscribers; (config, db url,
    (id, link key) of each)."""
    from newsletter.store import open_store_url
    from newsletter.store.csv_import import import_csv

    project = folder / "project"
    project.mkdir()
    shutil.copy2(ROOT / "newsletter.yaml", project)
    shutil.copytree(ROOT / "issues", project / "issues")
    database_url = database_url or f"sqlite:///{folder / 'newsletter.db'}"
    csv_path = folder / "subscribers.csv"
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("email,name,topics\n")
        for n in range(subscribers):
            handle.write(f"reader{n}@example.org,Reader {n},research\n")
    store = open_store_url(database_url, ("research", "stories", "events"))
    try:
        import_csv(store, csv_path)
        ids = [
            (subscriber.id, subscriber.link_key)
            for subscriber in store.subscribers(status="active")
        ]
    finally:
        store.close()
    return project / "newsletter.yaml", database_url, ids


def start_server(
    config: Path, database_url: str, port: int, threads: int, gunicorn: int = 0
) -> subprocess.Popen:
    """``newsletter serve`` (waitress, ``threads``), or gunicorn with ``gunicorn`` workers."""
    environment = {
        **os.environ,
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_DATABASE_URL": database_url,
        "NEWSLETTER_CONFIG": str(config),
    }
    if gunicorn:
        # gthread workers, as deploy systemd writes them (a sync worker closes every
        # connection after one request).
        command = [sys.executable, "-m", "gunicorn", "--workers", str(gunicorn),
                   "--threads", str(GUNICORN_THREADS), "--bind", f"127.0.0.1:{port}",
                   "newsletter.web.wsgi:app"]  # fmt: skip
    else:
        command = [sys.executable, "-m", "newsletter", "--config", str(config), "serve",
                   "--host", "127.0.0.1", "--port", str(port),
                   "--threads", str(threads)]  # fmt: skip
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not start")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unsubscribed_count(database_url: str) -> int:
    from newsletter.store import open_store_url

    store = open_store_url(database_url, ("research", "stories", "events"))
    try:
        return store.counts()["status"]["unsubscribed"]
    finally:
        store.close()


# -- the report --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--subscribers", type=int, default=30_000)
    parser.add_argument("--postgres", help="Serve from this PostgreSQL database, not SQLite.")
    parser.add_argument(
        "--gunicorn", type=int, default=0, metavar="N", help="Also run gunicorn with N workers."
    )
    options = parser.parse_args()
    if options.postgres:
        sys.path.insert(0, str(ROOT))  # the test suite's throwaway schemas
        from tests.store.databases import postgres_schema

        with postgres_schema(options.postgres) as database_url:
            benchmark(options, database_url)
    else:
        benchmark(options, None)


def benchmark(options: argparse.Namespace, database_url: str | None) -> None:
    from newsletter.tokens import Signer

    servers = [0, options.gunicorn] if options.gunicorn else [0]
    folder = Path(tempfile.mkdtemp(prefix="bench-web-"))
    try:
        config, database_url, ids = prepare(folder, options.subscribers, database_url)
        signer = Signer(SECRET)
        unsubscribe_paths = [f"/u/{signer.unsubscribe_token(id_, 1, key)}" for id_, key in ids]
        load_before = os.getloadavg()[0]
        results = {}
        for number, workers in enumerate(servers):
            share = unsubscribe_paths[number :: len(servers)]
            port = free_port()
            server = start_server(config, database_url, port, options.threads, workers)
            try:
                results[workers] = measure(server, port, share, options)
            finally:
                server.terminate()
                server.wait(timeout=30)
        load_after = os.getloadavg()[0]
        written = unsubscribed_count(database_url)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for workers, measured in results.items():
        report(measured, options, written, (load_before, load_after), workers)


def measure(
    server: subprocess.Popen, port: int, unsubscribe_paths: list[str], options: argparse.Namespace
) -> dict[str, list[RunResult]]:
    budget = len(unsubscribe_paths) // (options.runs + 1)  # distinct subscribers per run
    scenarios: dict[str, list[RunResult]] = {"baseline": [], "one-click": []}
    for run in range(options.runs + 1):  # run 0 warms up the server and is not counted
        seconds = 1.0 if run == 0 else options.seconds
        baseline = Scenario("GET /healthz", "GET", ["/healthz"] * 1_000_000)
        one_click = Scenario(
            "POST /u/<token>",
            "POST",
            unsubscribe_paths[run * budget : (run + 1) * budget],
            body=b"List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        for name, scenario in (("baseline", baseline), ("one-click", one_click)):
            result = run_client(server, port, scenario, options.connections, seconds)
            if run:
                scenarios[name].append(result)
            print(
                f"run {run} {name:9}: {result.rate:7.0f} req/s  p50 {result.p50_ms:5.1f} ms  "
                f"p99 {result.p99_ms:5.1f} ms  server CPU {result.server_cpu_ms:.2f} ms/req  "
                f"errors {result.errors}"
                + (
                    f"  (subscribers ran out after {result.requests})"
                    if name == "one-click" and result.requests >= budget
                    else ""
                ),
                file=sys.stderr,
            )
    return scenarios


def report(
    results: dict[str, list[RunResult]],
    options: argparse.Namespace,
    written: int,
    load: tuple[float, float],
    gunicorn: int = 0,
) -> None:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(result, field) for result in results[name])

    baseline_rate = median("baseline", "rate")
    rows = [
        ("GET /healthz (baseline)", "baseline"),
        ("POST /u/<token> one-click", "one-click"),
    ]
    server = (
        f"gunicorn --workers {gunicorn} --threads {GUNICORN_THREADS}"
        if gunicorn
        else f"newsletter serve (waitress, {options.threads} threads)"
    )
    print(
        f"\n{server}, "
        f"{'PostgreSQL' if options.postgres else 'SQLite'}, "
        f"{options.connections} keep-alive connections from a separate process, "
        f"median of {options.runs} runs of {options.seconds:g} s, {os.cpu_count()} cores\n"
    )
    print("| request | req/s | p50 ms | p99 ms | server CPU ms/req | errors | req/s vs baseline |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, name in rows:
        rate = median(name, "rate")
        errors = sum(result.errors for result in results[name])
        print(
            f"| {label} | {rate:.0f} | {median(name, 'p50_ms'):.1f} | "
            f"{median(name, 'p99_ms'):.1f} | {median(name, 'server_cpu_ms'):.2f} | {errors} | "
            f"{rate / baseline_rate:.2f} |"
        )
    rate, p99 = median("one-click", "rate"), median("one-click", "p99_ms")
    verdict = "met" if rate >= TARGET_RATE and p99 < TARGET_P99_MS else "NOT met"
    print(
        f"\nTarget (>= {TARGET_RATE} one-click req/s, p99 < {TARGET_P99_MS:.0f} ms): {verdict}. "
        f"Subscribers unsubscribed in the database: {written}. Load average (1 min) "
        f"before / after: {load[0]:.1f} / {load[1]:.1f} (this benchmark alone adds about 2; "
        "more means other work shared the machine)."
    )


if __name__ == "__main__":
    main()
