"""The test suite on every core against the same suite in one process, side by side.

    python benchmarks/bench_tests.py [--runs 3] [--workers 2] [--every 3 | --all]

``make test`` runs ``pytest -n auto`` (pytest-xdist: one worker per core); this measures
the wall time of ``pytest -n WORKERS`` against ``pytest -n 0`` (serial, in this process
as before xdist), in turns (serial, parallel, then parallel, serial, ...: a change in
the machine's load hits both alike), RUNS times each, and prints the medians, their
ratio and the load average before and after. A test that fails is named under its run
(on the loaded machine, a test that waits a few seconds for a subprocess sometimes
times out); a run that could not start stops the benchmark. The CPU time of each run (pytest and
everything it started) shows what the workers cost on top.

Under load, the figure depends on the scheduler: with autogroup (Linux's default on
many distributions, ``/proc/sys/kernel/sched_autogroup_enabled``) every session gets one
fair share of the CPUs, however many processes it runs, so on a machine busy with other
sessions two workers share the one share a serial run had, and only waits (servers,
subprocesses, the database) overlap.

The whole suite serially takes 5 to 11 minutes on the shared two-core machine, so by
default a representative subset runs: every EVERY-th test file in sorted order (every
package, fast unit tests, both databases, servers and subprocesses alike), without the
two files that take minutes on their own (the wheel build, gunicorn's four workers),
which would measure one file's length rather than the suite's. ``--all`` runs the whole
suite as ``make test`` does. Set NEWSLETTER_TEST_POSTGRES_URL for the PostgreSQL halves.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Minutes each on their own, whatever the number of workers: left out of the subset.
LONG_FILES = {"tests/test_packaging.py", "tests/web/test_gunicorn.py"}


def subset(every: int) -> list[str]:
    files = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("test_*.py")
        if str(path.relative_to(ROOT)) not in LONG_FILES
    )
    return files[::every]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(workers: int, paths: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of pytest and everything it started and waited for)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n"]
    command += [str(workers), *paths]
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    if done.returncode not in (0, 1):  # 1: some test failed, reported with the time
        output = done.stdout[-3000:]
        sys.exit(f"pytest -n {workers} did not run (exit {done.returncode}):\n{output}")
    if done.returncode == 1:
        failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED ")]
        print("\n".join(f"    {line}" for line in failed), flush=True)
    print(f"  -n {workers}: {seconds:6.1f} s, CPU {cpu:6.1f} s  ({last.strip('= ')})", flush=True)
    return seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--every", type=int, default=3, help="every N-th test file")
    parser.add_argument("--all", action="store_true", help="the whole suite (make test)")
    args = parser.parse_args()

    paths = [] if args.all else subset(args.every)
    what = "the whole suite" if args.all else f"{len(paths)} test files (every {args.every}th)"
    print(f"{what}; {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} before")
    serial: list[tuple[float, float]] = []
    parallel: list[tuple[float, float]] = []
    for run in range(args.runs):
        # Alternate which goes first, so neither always meets the same moment's load.
        order = [0, args.workers] if run % 2 == 0 else [args.workers, 0]
        for workers in order:
            (parallel if workers else serial).append(run_suite(workers, paths))
    one, many = (statistics.median(wall for wall, _ in runs) for runs in (serial, parallel))
    one_cpu, many_cpu = (statistics.median(cpu for _, cpu in runs) for runs in (serial, parallel))
    print(f"load average {os.getloadavg()[0]:.1f} after")
    print(
        f"median of {args.runs}: -n 0 {one:.1f} s, -n {args.workers} {many:.1f} s: "
        f"{one / many:.2f}x faster on {args.workers} workers (CPU: {one_cpu:.1f} s and "
        f"{many_cpu:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
