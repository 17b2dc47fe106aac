"""Render benchmark: build time of the seed issue and personalisation cost per recipient.

    python benchmarks/bench_render.py [--runs 200] [--recipients 10000]
    python benchmarks/bench_render.py --languages en,de,ar [--runs 200]

Prints a Markdown table (docs/performance.md keeps the figures). Baselines, run side by
side on the same machine in the same process:
- the official MJML compiler (node, in process) on the same compiled MJML, where
  node_modules/.bin/mjml is installed (`npm ci`);
- "compile per recipient": what personalisation would cost without the compile-once split.
With ``--languages``, only the full build of the seed issue in each language, the
languages taking turns run by run (so load affects them alike), against the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.config import load_config
from newsletter.models import Personalization
from newsletter.render.compile import compile_issue, mjml_to_html
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "issues" / "2026-11-26-stem-cells-in-breast-milk.md"
NODE_MJML = ROOT / "node_modules" / "mjml"

NODE_TIMER = """
const mjml = require(process.argv[1]);
const fs = require('fs');
const source = fs.readFileSync(process.argv[2], 'utf8');
const runs = Number(process.argv[3]);
for (let i = 0; i < 20; i++) mjml(source);
const times = [];
for (let i = 0; i < runs; i++) {
  const start = process.hrtime.bigint();
  mjml(source, {validationLevel: 'skip'});
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({median_ms: times[Math.floor(times.length / 2)]}));
"""


def median_ms(function: Callable[[], object], runs: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def node_compile_ms(mjml_source: str, runs: int) -> float | None:
    if not NODE_MJML.exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".mjml", delete=False) as handle:
        handle.write(mjml_source)
    result = subprocess.run(
        ["node", "-e", NODE_TIMER, str(NODE_MJML), handle.name, str(runs)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    Path(handle.name).unlink()
    return float(json.loads(result.stdout)["median_ms"])


def language_builds(runs: int, languages: list[str]) -> dict[str, float]:
    """Median full build (ms) of the seed issue per language, interleaved run by run."""
    base = load_config(ROOT / "newsletter.yaml")
    configs = {language: base.model_copy(update={"language": language}) for language in languages}

    def build(language: str) -> None:
        config = configs[language]
        fresh = read_issue(SEED, topics=config.topic_ids)
        Personalizer(compile_issue(fresh, config)).render(Personalization(email="a@example.org"))

    for language in languages:
        for _ in range(20):
            build(language)
    samples: dict[str, list[float]] = {language: [] for language in languages}
    for _ in range(runs):
        for language in languages:
            start = time.perf_counter()
            build(language)
            samples[language].append(time.perf_counter() - start)
    return {language: statistics.median(times) * 1000 for language, times in samples.items()}


def print_languages(runs: int, languages: list[str]) -> None:
    medians = language_builds(runs, languages)
    first = languages[0]
    print(f"Full build of the seed issue per language; medians of {runs}, interleaved.\n")
    print(f"| language | full build | against {first} |")
    print("| --- | --- | --- |")
    for language, ms in medians.items():
        print(f"| {language} | {ms:.2f} ms | {ms / medians[first]:.3f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument(
        "--languages", help="comma-separated codes: only the build per language (first = baseline)"
    )
    args = parser.parse_args()
    if args.languages:
        print_languages(args.runs, args.languages.split(","))
        return

    config = load_config(ROOT / "newsletter.yaml")
    issue = read_issue(SEED, topics=config.topic_ids)
    compiled = compile_issue(issue, config)

    def full_build() -> None:
        fresh = read_issue(SEED, topics=config.topic_ids)
        Personalizer(compile_issue(fresh, config)).render(Personalization(email="a@example.org"))

    build_ms = median_ms(full_build, args.runs)
    mjml_ms = median_ms(lambda: mjml_to_html(compiled.mjml), args.runs)

    personalizer = Personalizer(compiled)
    recipients = [
        Personalization(
            email=f"reader{i}@example.org",
            name=f"Reader {i}",
            unsubscribe_url=f"https://news.example.org/u/WzEyMzQ1LDdd.token{i}",
            preferences_url=f"https://news.example.org/p/MTIzNDU.token{i}",
            view_url="https://news.example.org/archive/stem-cells-in-breast-milk",
        )
        for i in range(args.recipients)
    ]
    samples = []
    for recipient in recipients:
        start = time.perf_counter()
        personalizer.render(recipient)
        samples.append(time.perf_counter() - start)
    personalise_us = statistics.median(samples) * 1e6
    recompile_ms = median_ms(lambda: compile_issue(issue, config), min(args.runs, 50))

    node_ms = node_compile_ms(compiled.mjml, args.runs)

    print(f"Seed issue, {len(compiled.html) / 1024:.0f} KB of HTML; medians.\n")
    print("| measure | this project | baseline | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| full build, Markdown to inlined HTML + text (median of {args.runs}) "
        f"| {build_ms:.2f} ms | target 5 ms | {build_ms / 5:.2f}x target |"
    )
    if node_ms is not None:
        print(
            f"| MJML compile only, same MJML | {mjml_ms:.2f} ms (mjml-python) "
            f"| {node_ms:.2f} ms (official node mjml, in process) "
            f"| {node_ms / mjml_ms:.0f}x faster |"
        )
    else:
        print(
            f"| MJML compile only | {mjml_ms:.2f} ms (mjml-python) | node mjml not installed | - |"
        )
    print(
        f"| personalisation per recipient (median of {args.recipients:,}) "
        f"| {personalise_us:.1f} µs | {recompile_ms * 1000:.0f} µs (compile per recipient) "
        f"| {recompile_ms * 1000 / personalise_us:.0f}x cheaper |"
    )


if __name__ == "__main__":
    main()
