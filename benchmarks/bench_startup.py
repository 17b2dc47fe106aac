"""Start-up benchmark: whole-process `newsletter --help` and `newsletter build` of the seed
issue, side by side with the official node `mjml` CLI compiling the same MJML, in one
hyperfine run.

    python benchmarks/bench_startup.py [--runs 30]

Needs hyperfine (apt-get install hyperfine) and node_modules (npm ci). Prints a Markdown
table (docs/performance.md keeps the figures). Targets from issue 14:
--help at most 0.15 s; build at most 0.30 s and at least 1.4x faster than the mjml CLI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "issues" / "2026-11-26-stem-cells-in-breast-milk.md"
CONFIG = ROOT / "newsletter.yaml"
NEWSLETTER = Path(sys.executable).with_name("newsletter")
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="Also time the code of git revision REV (exported with git archive, run by "
        "the same interpreter): before and after in one run.",
    )
    args = parser.parse_args()
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None:
        sys.exit("hyperfine is not installed (apt-get install hyperfine)")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        # One build first: the MJML for the node CLI, and warm caches (images, templates),
        # as an editor's second build would find them.
        subprocess.run([NEWSLETTER, "--config", CONFIG, "build", SEED, "--out", out], cwd=out,
                       check=True, capture_output=True)  # fmt: skip
        commands = {
            "newsletter --help": f"{NEWSLETTER} --help",
            "newsletter build (seed issue)": (
                f"{NEWSLETTER} --config {CONFIG} build {SEED} --out {out}"
            ),
        }
        if args.baseline:
            base = out / "baseline"
            base.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline, "newsletter"], cwd=ROOT,
                                     check=True, capture_output=True).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", base], input=archive, check=True)
            # -S: without site, the editable install's finder (which would import this
            # checkout's package) is not installed; the dependencies come from PYTHONPATH.
            # Skipping site also spares the baseline a few milliseconds.
            packages = sysconfig.get_paths()["purelib"]
            old = f"env PYTHONPATH={base}:{packages} {sys.executable} -S -m newsletter"
            commands[f"before ({args.baseline}): --help"] = f"{old} --help"
            commands[f"before ({args.baseline}): build"] = (
                f"{old} --config {CONFIG} build {SEED} --out {out / 'old'}"
            )
        if MJML_CLI.exists():
            mjml = out / "stem-cells-in-breast-milk" / "email.mjml"
            commands["official mjml CLI, same MJML"] = f"{MJML_CLI} {mjml} -o {out / 'node.html'}"
        results = out / "results.json"
        subprocess.run(
            [hyperfine, "--warmup", "3", "--runs", str(args.runs), "--shell=none",
             "--export-json", str(results), "--style", "none",
             *[part for name, command in commands.items() for part in ("-n", name, command)]],
            # Run from the temporary folder: `python -m` puts the working folder first
            # on sys.path, which would be this checkout's package.
            cwd=out, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        timings = {r["command"]: r for r in json.loads(results.read_text())["results"]}

    def cell(name: str) -> str:
        result = timings[name]
        return (
            f"{result['mean']:.3f} s ± {result['stddev']:.3f} "
            f"(CPU {result['user'] + result['system']:.3f} s)"
        )

    print(
        f"Whole process, mean wall time of {args.runs} runs after 3 warm-ups (hyperfine), and "
        "the CPU time (user + system), which a busy machine inflates less.\n"
    )
    print("| command | time | target |")
    print("| --- | --- | --- |")
    print(f"| `newsletter --help` | {cell('newsletter --help')} | ≤ 0.15 s |")
    build = "newsletter build (seed issue)"
    print(f"| `newsletter build` of the seed issue | {cell(build)} | ≤ 0.30 s |")
    if args.baseline:
        for name in (f"before ({args.baseline}): --help", f"before ({args.baseline}): build"):
            print(f"| {name} | {cell(name)} | |")
    node = "official mjml CLI, same MJML"
    if node in timings:
        ratio = timings[node]["mean"] / timings[build]["mean"]
        cpu = (timings[node]["user"] + timings[node]["system"]) / (
            timings[build]["user"] + timings[build]["system"]
        )
        print(f"| official `mjml` CLI on the same MJML | {cell(node)} | build {ratio:.2f}x faster "
              f"(CPU: {cpu:.2f}x; target ≥ 1.4x) |")  # fmt: skip


if __name__ == "__main__":
    main()
