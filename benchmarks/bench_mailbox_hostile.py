"""The return mailbox against hostile mail (issue 20): this tree and a baseline, side by side.

    python benchmarks/bench_mailbox_hostile.py [--baseline 295e808] [--runs 5]
                                               [--bounces 10000] [--rounds 3]

1. One message at a time, in this process: the baseline's ``classify`` (its
   ``send/mailbox/classify.py`` read from git) and this tree's ``Reader.classify``
   (size, nesting and time bounds), in turns, on 3,000 nested message/rfc822 parts,
   2,000 nested multiparts, a 1 MB multipart/report (a Postfix bounce with a 1 MB
   transcript) and reports of 4,000 and 16,000 lines of boundary look-alikes (the
   baseline only on 4,000: it is quadratic, 16,000 took 29 s). CPU seconds of one
   message, median of ``--runs``.
2. ``--bounces`` real bounces (``benchmarks/bench_mailbox.py``): the baseline's tree
   (``git archive``) and this one, in subprocesses, in turns for ``--rounds`` rounds;
   median wall and CPU seconds of the whole ``process_mailbox``.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.send.mailbox.guard import Limits, Reader  # noqa: E402
from newsletter.send.return_tokens import ReturnTokens  # noqa: E402
from tests.mailbox.conftest import fill, link_keys  # noqa: E402
from tests.mailbox.hostile import (  # noqa: E402
    big_report,
    dashes_report,
    nested_messages,
    nested_multiparts,
)

SECRET = "benchmark-secret-key-0123456789abcdef"
LIMITS = Limits(max_bytes=5_000_000, seconds=2.0)  # the defaults


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout


def baseline_classify(commit: str) -> ModuleType:
    path = Path(tempfile.mkdtemp()) / "baseline_classify.py"
    path.write_bytes(git("show", f"{commit}:newsletter/send/mailbox/classify.py"))
    spec = importlib.util.spec_from_file_location("baseline_classify", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def cpu_seconds(read: Callable[[], str]) -> tuple[float, str]:
    started = time.process_time()
    try:
        outcome = read()
    except RecursionError:
        outcome = "RecursionError"
    return time.process_time() - started, outcome


def messages(tokens: ReturnTokens) -> list[tuple[str, bytes, bool]]:
    bounce = fill("postfix-user-unknown", 42, 7, tokens=tokens)
    return [
        ("3,000 nested message/rfc822", nested_messages(3000), True),
        ("2,000 nested multiparts", nested_multiparts(2000), True),
        ("1 MB multipart/report", big_report(1_000_000, bounce), True),
        ("4,000 lines of `--a`", dashes_report(4_000), True),
        ("16,000 lines of `--a`", dashes_report(16_000), False),
    ]


def one_at_a_time(commit: str, runs: int) -> None:
    tokens = ReturnTokens(SECRET)
    baseline = baseline_classify(commit)
    print(f"| message | bytes | baseline {commit} (CPU s) | this tree (CPU s) | outcome |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, raw, with_baseline in messages(tokens):
        old: list[float] = []
        new: list[float] = []
        old_outcome = new_outcome = ""
        for _ in range(runs):
            if with_baseline:
                seconds, old_outcome = cpu_seconds(
                    lambda raw=raw: baseline.classify(raw, tokens, link_keys).kind
                )
                old.append(seconds)
            with Reader(tokens, LIMITS) as reader:
                seconds, new_outcome = cpu_seconds(
                    lambda raw=raw: reader.classify(raw, len(raw), link_keys).kind
                )
            new.append(seconds)
        shown = f"{statistics.median(old):.3f} ({old_outcome})" if old else "not run"
        print(f"| {name} | {len(raw):,} | {shown} | {statistics.median(new):.3f} | {new_outcome} |")


_ROW = re.compile(r"^\| ([\d,]+) \| ([\d.]+) \| [\d,]+ \| ([\d.]+) \|", re.M)


def bench_mailbox(tree: Path, bounces: int) -> tuple[float, float]:
    output = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "bench_mailbox.py"), "--messages",
         str(bounces), "--runs", "1"],
        check=True, capture_output=True, text=True, cwd=tree,
    ).stdout  # fmt: skip
    found = _ROW.search(output)
    assert found is not None, output
    return float(found[2]), float(found[3])


def side_by_side(commit: str, bounces: int, rounds: int) -> None:
    baseline_tree = Path(tempfile.mkdtemp(prefix="newsletter-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(git("archive", commit))) as archive:
        archive.extractall(baseline_tree, filter="data")
    results: dict[str, list[tuple[float, float]]] = {"baseline": [], "this tree": []}
    for _ in range(rounds):
        results["baseline"].append(bench_mailbox(baseline_tree, bounces))
        results["this tree"].append(bench_mailbox(ROOT, bounces))
    print()
    print(f"| {bounces:,} real bounces | median s | CPU s | runs |")
    print("| --- | ---: | ---: | ---: |")
    for label, figures in results.items():
        name = f"baseline {commit}" if label == "baseline" else label
        wall = statistics.median(seconds for seconds, _ in figures)
        cpu = statistics.median(cpu for _, cpu in figures)
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {len(figures)} |")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="295e808")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bounces", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    os.environ["NEWSLETTER_SECRET_KEY"] = SECRET
    print(f"load average at the start: {os.getloadavg()[0]:.1f}")
    one_at_a_time(options.baseline, options.runs)
    if options.rounds:
        side_by_side(options.baseline, options.bounces, options.rounds)


if __name__ == "__main__":
    main()
