"""Start-up benchmark: whole-process `newsletter --help` and `newsletter build` of the seed
issue, side by side with the official node `mjml` CLI compiling the same MJML, in one
hyperfine run.

    python benchmarks/bench_startup.py [--runs 30]

Needs hyperfine (apt-get install hyperfine) and node_modules (npm ci). Prints a Markdown
table (the README's Speed section keeps the current figures). Targets from issue 14:
--help at most 0.15 s; build at most 0.30 s and at least 1.4x faster than the mjml CLI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
NEWSLETTER = Path(sys.executable).with_name("newsletter")
MJML_CLI = ROOT / "node_modules" / ".bin" / "mjml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None:
        sys.exit("hyperfine is not installed (apt-get install hyperfine)")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        # One build first: the MJML for the node CLI, and warm caches (images, templates),
        # as an editor's second build would find them.
        subprocess.run([NEWSLETTER, "build", SEED, "--out", out], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        commands = {
            "newsletter --help": f"{NEWSLETTER} --help",
            "newsletter build (seed issue)": f"{NEWSLETTER} build {SEED} --out {out}",
        }
        if MJML_CLI.exists():
            mjml = out / "stem-cells-in-breast-milk" / "email.mjml"
            commands["official mjml CLI, same MJML"] = f"{MJML_CLI} {mjml} -o {out / 'node.html'}"
        results = out / "results.json"
        subprocess.run(
            [hyperfine, "--warmup", "3", "--runs", str(args.runs), "--shell=none",
             "--export-json", str(results), "--style", "none",
             *[part for name, command in commands.items() for part in ("-n", name, command)]],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
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
