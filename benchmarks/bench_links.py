"""Link-heavy issue benchmark: ``newsletter build`` of issues of 1, 5 and 10 MB of links.

    python benchmarks/bench_links.py [--sizes 1 5 10] [--runs 3] [--baseline 8b29a4a]

Each issue is paragraphs like "Paragraph 17 with [a link number 17](https://example.org/
page/17) and text." (issue 11, item 10: a 10 MB issue, about 116,000 links, must build in
under 10 s). For each size: the whole ``newsletter build`` process (wall and CPU time of
the child, median of RUNS) and, in a fresh process, ``read_issue`` and ``compile_issue``
alone. The baseline is the code of git revision BASELINE (default: the commit before the
link fast paths), exported with git archive and run by the same interpreter, side by
side; it is slow, so it runs --baseline-runs times (default 1). Prints the load average,
then a Markdown table (docs/performance.md keeps the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "newsletter.yaml"

# Run in a fresh process, so each measure starts from the same heap.
SPLIT = """
import json, sys, time
from pathlib import Path
from newsletter.config import load_config
try:
    from newsletter.render.issues import read_issue
    from newsletter.render.compile import compile_issue
except ImportError:  # the baseline: before the modules moved into render/
    from newsletter.issues import read_issue
    from newsletter.render import compile_issue
config = load_config(Path(sys.argv[1]))
samples = []
for _ in range(int(sys.argv[3])):
    wall, cpu = time.perf_counter(), time.process_time()
    issue = read_issue(Path(sys.argv[2]), topics=config.topic_ids)
    read = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    compile_issue(issue, config)
    samples.append(read + (time.perf_counter() - wall, time.process_time() - cpu))
    del issue
print(json.dumps(samples))
"""


def write_issue(folder: Path, megabytes: int) -> tuple[Path, int]:
    paragraphs = []
    size = links = 0
    while size < megabytes * 1_000_000:
        paragraph = (
            f"Paragraph {links} with [a link number {links}](https://example.org/page/{links}) "
            "and text.\n\n"
        )
        paragraphs.append(paragraph)
        size += len(paragraph)
        links += 1
    path = folder / f"2026-11-30-links-{megabytes}mb.md"
    path.write_text("---\ntitle: Links\n---\n\n" + "".join(paragraphs), encoding="utf-8")
    return path, links


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_build(command: list[str], runs: int, cwd: Path) -> tuple[float, float]:
    """Median wall and CPU seconds of a whole process."""
    walls, cpus = [], []
    for _ in range(runs):
        cpu, wall = child_cpu(), time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        walls.append(time.perf_counter() - wall)
        cpus.append(child_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def time_split(python: list[str], issue: Path, runs: int, cwd: Path) -> list[float]:
    """Median (read wall, read CPU, compile wall, compile CPU) in one process."""
    output = subprocess.run([*python, "-c", SPLIT, str(CONFIG), str(issue), str(runs)],
                            cwd=cwd, check=True, capture_output=True, text=True).stdout  # fmt: skip
    samples = json.loads(output)
    return [statistics.median(sample[index] for sample in samples) for index in range(4)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 5, 10], metavar="MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", default="8b29a4a")
    parser.add_argument("--baseline-runs", type=int, default=1)
    args = parser.parse_args()
    print(f"Load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        base = work / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "newsletter"], cwd=ROOT,
                                 check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
        # -S: without site, the editable install's finder (which would import this
        # checkout's package) is not installed; the dependencies come from PYTHONPATH.
        packages = sysconfig.get_paths()["purelib"]
        old_python = ["env", f"PYTHONPATH={base}:{packages}", sys.executable, "-S"]
        new_python = [sys.executable]
        rows = []
        for megabytes in args.sizes:
            issue, links = write_issue(work, megabytes)
            build = ["--config", str(CONFIG), "build", str(issue), "--out", str(work / "out")]
            new = time_build([*new_python, "-m", "newsletter", *build], args.runs, work)
            new_split = time_split(new_python, issue, args.runs, work)
            old = time_build([*old_python, "-m", "newsletter", *build], args.baseline_runs, work)
            old_split = time_split(old_python, issue, args.baseline_runs, work)
            rows.append((megabytes, links, new, new_split, old, old_split))
    print(f"Load average after: {os.getloadavg()[0]:.1f}\n")
    print(f"Medians; wall / CPU seconds; before = {args.baseline}.\n")
    print("| issue | `newsletter build` | read | compile | before: build | before: read "
          "| CPU speed-up |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for megabytes, links, new, split, old, old_split in rows:
        print(
            f"| {megabytes} MB, {links:,} links | {new[0]:.1f} / {new[1]:.1f} s "
            f"| {split[0]:.1f} / {split[1]:.1f} s | {split[2]:.1f} / {split[3]:.1f} s "
            f"| {old[0]:.1f} / {old[1]:.1f} s | {old_split[0]:.1f} / {old_split[1]:.1f} s "
            f"| {old[1] / new[1]:.1f}x |"
        )


if __name__ == "__main__":
    main()
